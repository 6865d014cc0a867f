package engine

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cutover-dev/cutover/plan"
)

var registry struct {
	sync.RWMutex
	bySchema map[string]Engine
	engines  []Engine
}

// Register makes an engine available to the commands; the binary calls it for each
// engine it is built with, before it runs a command. A scheme registered twice is a
// mistake in the binary, and panics.
func Register(e Engine) {
	registry.Lock()
	defer registry.Unlock()
	if registry.bySchema == nil {
		registry.bySchema = map[string]Engine{}
	}
	for _, s := range e.Schemes() {
		if other, ok := registry.bySchema[s]; ok {
			panic(fmt.Sprintf("engine: scheme %q registered by %s and %s", s, other.Name(), e.Name()))
		}
	}
	for _, s := range e.Schemes() {
		registry.bySchema[s] = e
	}
	registry.engines = append(registry.engines, e)
}

// scheme is a connection string's URL scheme, "" when it has none.
func scheme(url string) string {
	if i := strings.Index(url, "://"); i > 0 {
		return strings.ToLower(url[:i])
	}
	return ""
}

// ForURL is the engine of a connection string, by its scheme.
func ForURL(url string) (Engine, error) {
	registry.RLock()
	defer registry.RUnlock()
	s := scheme(url)
	if e, ok := registry.bySchema[s]; ok {
		return e, nil
	}
	if s == "" {
		return nil, fmt.Errorf("has no scheme: write it as a URL, such as %s", example())
	}
	return nil, fmt.Errorf("%s is not supported yet: this cutover migrates %s", s, supported())
}

// CheckURL says what is wrong with a connection string: a scheme no engine
// registered, or what its engine finds. The plan calls it for source.url and
// target.url.
func CheckURL(url string) error {
	e, err := ForURL(url)
	if err != nil {
		return err
	}
	return e.CheckURL(url)
}

var _ plan.URLCheck = CheckURL

// supported lists the registered engines with their schemes, for messages.
func supported() string {
	var names []string
	for _, e := range registry.engines {
		var schemes []string
		for _, s := range e.Schemes() {
			if s != "" {
				schemes = append(schemes, s+"://")
			}
		}
		names = append(names, fmt.Sprintf("%s (%s)", e.Name(), strings.Join(schemes, ", ")))
	}
	if len(names) == 0 {
		return "nothing (no engine registered)"
	}
	return strings.Join(names, " and ")
}

func example() string {
	for _, e := range registry.engines {
		if i := slices.IndexFunc(e.Schemes(), func(s string) bool { return s != "" }); i >= 0 {
			return e.Schemes()[i] + "://user@host:port/database"
		}
	}
	return "scheme://user@host:port/database"
}

// Open is the migration of a plan: the engines of its source and target, and what
// runs between them: one engine's own migration, or a pair of two engines'.
func Open(p *plan.Plan) (Migration, error) {
	src, err := ForURL(p.Source.URL)
	if err != nil {
		return nil, fmt.Errorf("source.url %w", err)
	}
	tgt, err := ForURL(p.Target.URL)
	if err != nil {
		return nil, fmt.Errorf("target.url %w", err)
	}
	if src == tgt {
		if m, ok := src.(Mover); ok {
			return m, nil
		}
		return partial{src}, nil
	}
	ps, canRead := src.(PairSource)
	pt, canWrite := tgt.(PairTarget)
	if canRead && canWrite {
		return pair{ps, pt}, nil
	}
	return nil, fmt.Errorf("a migration from %s to %s is not supported yet: this cutover migrates %s to the same engine%s", src.Name(), tgt.Name(), supported(), pairs())
}

// pairs lists the migrations between two engines the registered engines make, for
// messages.
func pairs() string {
	var out []string
	for _, s := range registry.engines {
		for _, t := range registry.engines {
			if s == t {
				continue
			}
			if _, ok := s.(PairSource); !ok {
				continue
			}
			if _, ok := t.(PairTarget); ok {
				out = append(out, s.Name()+" to "+t.Name())
			}
		}
	}
	if len(out) == 0 {
		return ""
	}
	return ", and " + strings.Join(out, ", ")
}
