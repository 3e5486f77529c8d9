package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// splunkPath is the HEC JSON event endpoint, appended to the configured url.
const splunkPath = "/services/collector/event"

// defaultSplunkBatch is the number of events per HEC request when the config leaves batch at zero.
const defaultSplunkBatch = 100

// splunkMaxBody caps one HEC request body. Splunk's max_content_length defaults to far more on
// recent Splunk Enterprise, but Splunk Cloud and older releases accept about 1 MB, and an incident
// with its rawJSON can weigh tens of kilobytes: a batch is cut short rather than rejected (a single
// event larger than this still goes alone).
const splunkMaxBody = 1 << 20

// SplunkHEC posts events to Splunk's HTTP Event Collector (WIZ_API.md §8):
// POST <url>/services/collector/event with "Authorization: Splunk <token>" and a body of up to
// batch concatenated JSON objects (not an array), one per event:
//
//	{"time":<emitted_at, epoch seconds>,"host":<this host>,"source":"wiz","sourcetype":"wiz:issue","index":<index>,"event":<the event line>}
//
// host, source, sourcetype and index are left out when empty (index empty: the token's default).
// Indexer acknowledgement (useACK) is not used: a 2xx answer with code 0 counts as delivered.
type SplunkHEC struct {
	name       string
	endpoint   string
	token      string
	host       string
	source     string
	sourcetype string
	index      string
	batch      int
	maxBody    int
	http       *httpSender
	log        *slog.Logger
}

// NewSplunkHEC builds the splunk_hec sink of cfg (secrets already resolved). The host field is the
// machine's host name.
func NewSplunkHEC(cfg config.Sink, log *slog.Logger) (*SplunkHEC, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Token.Reveal() == "" {
		return nil, fmt.Errorf("splunk_hec sink %s: token is not set", cfg.Name)
	}
	endpoint, err := joinURL(cfg.URL, splunkPath)
	if err != nil {
		return nil, fmt.Errorf("splunk_hec sink %s: %w", cfg.Name, err)
	}
	hs, err := newHTTPSender(cfg, log, cfg.Token.Reveal())
	if err != nil {
		return nil, fmt.Errorf("splunk_hec sink %s: %w", cfg.Name, err)
	}
	batch := cfg.Batch
	if batch <= 0 {
		batch = defaultSplunkBatch
	}
	host, _ := os.Hostname() // best effort: the field is left out when unknown
	return &SplunkHEC{
		name:       cfg.Name,
		endpoint:   endpoint,
		token:      cfg.Token.Reveal(),
		host:       host,
		source:     cfg.Source,
		sourcetype: cfg.Sourcetype,
		index:      cfg.Index,
		batch:      batch,
		maxBody:    splunkMaxBody,
		http:       hs,
		log:        log.With("component", "sink", "sink", cfg.Name),
	}, nil
}

// Name implements Sink.
func (s *SplunkHEC) Name() string { return s.name }

// Close implements Sink.
func (s *SplunkHEC) Close() error {
	s.http.close()
	return nil
}

// Deliver implements Sink. Events go in requests of up to batch events (and about splunkMaxBody
// bytes). HEC rejects a whole request for one bad event (400 with invalid-event-number) or for its
// size (413), and whether it indexed the events before the bad one is not documented; so a batch
// rejected for its content is re-sent one event per request, which delivers the good events (some
// possibly twice: at-least-once) and pins the permanent failure on the event that causes it.
func (s *SplunkHEC) Deliver(ctx context.Context, items []store.OutboxItem) (int, error) {
	done := 0
	for done < len(items) {
		body, n, renderErr := s.frame(items[done:], s.batch)
		if n > 0 {
			err := s.post(ctx, body)
			if err != nil && n > 1 && contentRejected(err) {
				s.log.Warn("batch rejected for its content; sending its events one by one", "events", n, "err", err)
				sent, err1 := s.deliverOneByOne(ctx, items[done:done+n])
				done += sent
				if err1 != nil {
					return done, err1
				}
				continue
			}
			if err != nil {
				return done, err
			}
			done += n
		}
		if renderErr != nil {
			return done, renderErr
		}
	}
	return done, nil
}

// deliverOneByOne sends each item in its own request.
func (s *SplunkHEC) deliverOneByOne(ctx context.Context, items []store.OutboxItem) (int, error) {
	for i := range items {
		body, n, err := s.frame(items[i:], 1)
		if err != nil {
			return i, err
		}
		if n != 1 {
			return i, fmt.Errorf("splunk_hec sink %s: event seq %d did not render", s.name, items[i].Seq)
		}
		if err := s.post(ctx, body); err != nil {
			return i, err
		}
	}
	return len(items), nil
}

// contentRejected reports whether HEC refused a request for what it holds (so a smaller request may
// pass), as opposed to refusing the sender (401, 403) or the URL (404).
func contentRejected(err error) bool {
	var he *HTTPError
	if !errors.As(err, &he) {
		return false
	}
	switch he.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// frame renders up to max leading items into one body, stopping early at the size cap (but always
// taking at least one item). It returns the body, how many items it holds, and the permanent error
// of the item that stopped it, if one could not be rendered.
func (s *SplunkHEC) frame(items []store.OutboxItem, max int) ([]byte, int, error) {
	var body []byte
	n := 0
	for _, it := range items {
		if n == max {
			break
		}
		start := len(body)
		var err error
		body, err = s.appendEvent(body, it)
		if err != nil {
			return body[:start], n, fmt.Errorf("splunk_hec sink %s: %w", s.name, err)
		}
		if n > 0 && len(body) > s.maxBody {
			return body[:start], n, nil
		}
		n++
	}
	return body, n, nil
}

// appendEvent appends the HEC object of one event line.
func (s *SplunkHEC) appendEvent(dst []byte, it store.OutboxItem) ([]byte, error) {
	ev, err := parseEvent(it)
	if err != nil {
		return dst, err
	}
	t, err := time.Parse(time.RFC3339Nano, ev.EmittedAt)
	if err != nil {
		return dst, Permanent(fmt.Errorf("event %s: emitted_at %q is not RFC 3339", ev.EventID, ev.EmittedAt))
	}
	dst = append(dst, `{"time":`...)
	dst = appendEpoch(dst, t)
	for _, f := range [...]struct{ key, val string }{
		{"host", s.host}, {"source", s.source}, {"sourcetype", s.sourcetype}, {"index", s.index},
	} {
		if f.val == "" {
			continue
		}
		dst = append(dst, `,"`...)
		dst = append(dst, f.key...)
		dst = append(dst, `":`...)
		dst = appendJSONString(dst, f.val)
	}
	dst = append(dst, `,"event":`...)
	dst = append(dst, it.Data...) // valid JSON: parseEvent decoded it
	return append(dst, '}'), nil
}

// appendEpoch appends t as epoch seconds: an integer, or with milliseconds when t has them.
func appendEpoch(dst []byte, t time.Time) []byte {
	dst = strconv.AppendInt(dst, t.Unix(), 10)
	if ms := t.Nanosecond() / int(time.Millisecond); ms > 0 {
		dst = append(dst, '.')
		dst = append(dst, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	}
	return dst
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// post sends one HEC body and checks HEC's answer code.
func (s *SplunkHEC) post(ctx context.Context, body []byte) error {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Splunk "+s.token)
	resp, err := s.http.do(ctx, http.MethodPost, s.endpoint, h, body)
	if err != nil {
		return fmt.Errorf("splunk_hec sink %s: %w", s.name, err)
	}
	var ack struct {
		Text string `json:"text"`
		Code *int   `json:"code"`
	}
	if json.Unmarshal(resp.body, &ack) == nil && ack.Code != nil && *ack.Code != 0 {
		// A 2xx that is not a success (a proxy or a HEC quirk): retry rather than lose the batch.
		return fmt.Errorf("splunk_hec sink %s: HEC answered HTTP %d with code %d: %s", s.name, resp.status, *ack.Code, s.http.redact(oneLine(ack.Text)))
	}
	return nil
}

var _ Sink = (*SplunkHEC)(nil)
