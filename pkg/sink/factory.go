package sink

import (
	"fmt"
	"log/slog"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// Events per Deliver call of each sink type. XSOAR and webhook still send one request per event;
// the batch only bounds how much the dispatcher reads from the outbox at a time.
const (
	jsonlBatch    = 500
	perEventBatch = 50
)

// New builds the sink of one config entry (type jsonl, xsoar, webhook or splunk_hec). Secrets must
// be resolved already (config.Config.ResolveSecrets). st is the store: the xsoar sink keeps its
// issue → incident map in it. A jsonl sink opens (and may repair) its file, so the caller must
// hold the store lock first.
func New(cfg config.Sink, st *store.Store, log *slog.Logger) (Sink, error) {
	// Each constructor returns a concrete pointer: never hand a typed nil out as a non-nil Sink.
	var (
		s   Sink
		err error
	)
	switch cfg.Type {
	case config.SinkJSONL:
		var j *JSONL
		if j, err = OpenJSONL(cfg.Name, cfg.Path, log); err == nil {
			s = j
		}
	case config.SinkXSOAR:
		var x *XSOAR
		if x, err = NewXSOAR(cfg, st, log); err == nil {
			s = x
		}
	case config.SinkWebhook:
		var w *Webhook
		if w, err = NewWebhook(cfg, log); err == nil {
			s = w
		}
	case config.SinkSplunkHEC:
		var h *SplunkHEC
		if h, err = NewSplunkHEC(cfg, log); err == nil {
			s = h
		}
	default:
		err = fmt.Errorf("sink %s: unknown type %q", cfg.Name, cfg.Type)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// NewTarget builds the sink of cfg (see New) with its dispatcher settings: Batch is cfg.Batch for
// splunk_hec (100 when unset), 500 for jsonl, 50 for xsoar and webhook; RetryFor is cfg.RetryFor.
func NewTarget(cfg config.Sink, st *store.Store, log *slog.Logger) (Target, error) {
	s, err := New(cfg, st, log)
	if err != nil {
		return Target{}, err
	}
	t := Target{Sink: s, RetryFor: cfg.RetryFor.D()}
	switch cfg.Type {
	case config.SinkJSONL:
		t.Batch = jsonlBatch
	case config.SinkSplunkHEC:
		t.Batch = cfg.Batch
		if t.Batch <= 0 {
			t.Batch = defaultSplunkBatch
		}
	default:
		t.Batch = perEventBatch
	}
	return t, nil
}
