// Package monitoring holds the Grafana dashboard and Prometheus alert rules for cutover's metrics; its test checks them against the metrics the binary serves.
package monitoring
