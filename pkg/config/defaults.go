package config

import (
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// Sink types (Sink.Type).
const (
	// SinkJSONL appends events to a local JSON Lines file.
	SinkJSONL = "jsonl"
	// SinkXSOAR creates and updates incidents through the XSOAR / XSIAM REST API.
	SinkXSOAR = "xsoar"
	// SinkWebhook posts each event to a URL, signed per Standard Webhooks.
	SinkWebhook = "webhook"
	// SinkSplunkHEC sends events to a Splunk HTTP Event Collector.
	SinkSplunkHEC = "splunk_hec"
)

// IssueStatuses returns Wiz's issue statuses, in a fresh slice. It is wizdef.Statuses, kept for
// callers outside this package; new code uses pkg/wizdef, where every Wiz enum is defined.
func IssueStatuses() []string { return wizdef.Statuses() }

// SinkTypes returns the known sink types, in a fresh slice.
func SinkTypes() []string { return []string{SinkJSONL, SinkXSOAR, SinkWebhook, SinkSplunkHEC} }

// DefaultWizTimeout is the default wiz.timeout, the bound of one HTTP request to Wiz. Heavy issue
// queries can take over a minute, and the limit must stay under the Wiz gateway's own timeout so
// that a slow answer still arrives: the Wiz XSOAR pack settled on 115 s for that reason
// (demisto/content PR #44400).
const DefaultWizTimeout = 115 * time.Second

// DefaultInstanceName is the name of the single instance built from the top-level sections when the
// config has no `instances:` list.
const DefaultInstanceName = "default"

// Default returns the defaults of DESIGN.md §5. wiz.api_url is empty (it is required, so Default()
// alone does not validate); Instances is empty until Load normalises it.
func Default() *Config {
	return &Config{
		Wiz: Wiz{
			RequestsPerSecond: 2,
			Timeout:           Duration(DefaultWizTimeout),
		},
		Fetch: Fetch{
			Enabled:     true,
			Interval:    Duration(time.Minute),
			Lookback:    Duration(7 * day),
			MaxPerFetch: 200,
			Overlap:     Duration(5 * time.Minute),
			CatchUp:     true,
			Updates:     true,
			Status:      []string{wizdef.StatusOpen, wizdef.StatusInProgress},
			Severity:    []string{},
			Type:        []string{},
			ProjectIDs:  []string{},
		},
		// Every issue is a "Wiz Issue": the Wiz XSOAR pack installs the incident types "Wiz Issue"
		// and "WizDefend Detection" only, and associates its Wiz fields with "Wiz Issue" (Packs/Wiz
		// IncidentTypes/, IncidentFields/). A built-in rule naming any other type would create
		// incidents of a type the pack does not have.
		Classify: Classify{
			DefaultType: "Wiz Issue",
			Rules:       []ClassifyRule{},
		},
		Mapping: Mapping{Fields: map[string]string{}},
		Store: Store{
			Backend:   StoreBbolt,
			Path:      "/var/lib/wizfetch/wizfetch.db",
			Retention: Duration(90 * day),
			Etcd: Etcd{
				Endpoints: []string{},
				Prefix:    "/wizfetch/",
				LeaseTTL:  Duration(10 * time.Second),
			},
		},
		Sinks: []Sink{
			func() Sink {
				s := DefaultSink(SinkJSONL)
				s.Name = "file"
				s.Path = "/var/lib/wizfetch/incidents.jsonl"
				return s
			}(),
		},
		Server: Server{Listen: "127.0.0.1:8080"},
	}
}

// DefaultSink returns the defaults of a sink of the given type, before the file's keys are applied:
// every sink max_pending 10000, retry_for 24h, timeout 30s; splunk_hec source "wiz", sourcetype
// "wiz:issue", batch 100; xsoar create_investigation true.
func DefaultSink(typ string) Sink {
	s := Sink{
		Type:       typ,
		MaxPending: 10000,
		RetryFor:   Duration(24 * time.Hour),
		Timeout:    Duration(30 * time.Second),
	}
	switch typ {
	case SinkSplunkHEC:
		s.Source = "wiz"
		s.Sourcetype = "wiz:issue"
		s.Batch = 100
	case SinkXSOAR:
		t := true
		s.CreateInvestigation = &t
	}
	return s
}

// sinkKeys lists the keys that apply to each sink type besides the common ones (name, type,
// max_pending, retry_for, timeout). A key of another type is an error: a misplaced key must not
// pass silently.
func sinkKeys(typ string) []string {
	remote := []string{"url", "ca_file", "insecure_skip_verify"}
	switch typ {
	case SinkJSONL:
		return []string{"path"}
	case SinkXSOAR:
		return append(remote, "api_key", "api_key_file", "api_key_env", "api_key_id", "advanced_key",
			"create_investigation", "incident_type_override", "mirror")
	case SinkWebhook:
		return append(remote, "secret", "secret_file", "secret_env", "bearer_token", "bearer_token_file",
			"bearer_token_env")
	case SinkSplunkHEC:
		return append(remote, "token", "token_file", "token_env", "index", "source", "sourcetype", "batch")
	}
	return nil
}
