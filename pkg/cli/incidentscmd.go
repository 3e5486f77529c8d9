package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/server"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// incidentView is one stored incident as the CLI prints it when reading the store directly.
type incidentView struct {
	Instance    string          `json:"instance"`
	IssueID     string          `json:"issue_id"`
	Status      string          `json:"status"`
	Version     int             `json:"version"`
	LastEventID string          `json:"last_event_id"`
	UpdatedAt   time.Time       `json:"updated_at"`
	ClosedAt    *time.Time      `json:"closed_at,omitempty"`
	Incident    json.RawMessage `json:"incident,omitempty"`
}

func viewOf(r *store.IncidentRecord, withIncident bool) incidentView {
	v := incidentView{Instance: r.Instance, IssueID: r.IssueID, Status: r.Status, Version: r.Version,
		LastEventID: r.LastEventID, UpdatedAt: r.UpdatedAt, ClosedAt: r.ClosedAt}
	if withIncident && json.Valid(r.Incident) {
		v.Incident = r.Incident
	}
	return v
}

func newIncidentsCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "incidents", Short: "List, show and replay incidents; list dead letters and rejected issues"}
	var instance, status string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List stored incidents (newest state of each issue)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			path := fmt.Sprintf("/v1/incidents?limit=%d&instance=%s&status=%s", limit, queryEscape(instance), queryEscape(status))
			if body, code, ok := newDaemonClient(cfg).get(cmd.Context(), path); ok && code == http.StatusOK {
				return printJSON(cmd.OutOrStdout(), body)
			}
			st, err := openStoreForView(cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			var out []incidentView
			err = st.View(func(tx *store.Tx) error {
				return tx.ForEachIncident(instance, func(r *store.IncidentRecord) error {
					if (status == "" || r.Status == status) && len(out) < limit {
						out = append(out, viewOf(r, false))
					}
					return nil
				})
			})
			if err != nil {
				return failure(err)
			}
			return writeJSON(cmd.OutOrStdout(), map[string]any{"incidents": out})
		},
	}
	list.Flags().StringVar(&instance, "instance", "", "only this instance")
	list.Flags().StringVar(&status, "status", "", "only this issue status (OPEN, IN_PROGRESS, RESOLVED, REJECTED)")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many")

	show := &cobra.Command{
		Use:   "show ISSUE_ID",
		Short: "Show one incident with its XSOAR body",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			if body, code, ok := newDaemonClient(cfg).get(cmd.Context(), "/v1/incidents/"+queryEscape(args[0])+"?instance="+queryEscape(instance)); ok {
				if code == http.StatusNotFound {
					return failure(fmt.Errorf("no incident for issue %s", args[0]))
				}
				if code == http.StatusOK {
					return printJSON(cmd.OutOrStdout(), body)
				}
			}
			st, err := openStoreForView(cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			var instances []string
			for _, inst := range cfg.Instances {
				if instance == "" || inst.Name == instance {
					instances = append(instances, inst.Name)
				}
			}
			found, err := st.IncidentsByID(instances, args[0])
			if err != nil {
				return failure(err)
			}
			if len(found) == 0 {
				return failure(fmt.Errorf("no incident for issue %s", args[0]))
			}
			return writeJSON(cmd.OutOrStdout(), viewOf(found[0], true))
		},
	}
	show.Flags().StringVar(&instance, "instance", "", "only this instance")

	cmd.AddCommand(list, show, newReplayCommand(env), newDeadLetterCommand(env), newRejectedCommand(env))
	return cmd
}

func newReplayCommand(env *Env) *cobra.Command {
	var sinkName, since, issueID, instance string
	var deadLetter bool
	cmd := &cobra.Command{
		Use:   "replay --sink NAME [--since T] [--issue ID] [--dead-letter]",
		Short: "Re-send incidents (or the dead letter) to a sink; the daemon must be stopped",
		Long: `Re-send to one sink, from the store: each selected incident's latest event (same event_id as
first sent, so receivers can dedupe), or with --dead-letter every dead-lettered event of the sink back to
its outbox. The running daemon owns the store, so stop it first; the next run delivers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(cfg.Sinks, func(s configSink) bool { return s.Name == sinkName }) {
				return usageError(fmt.Errorf("--sink: %q is not a configured sink", sinkName))
			}
			var from time.Time
			if since != "" {
				if from, err = parseTimeArg(since, time.Now()); err != nil {
					return usageError(fmt.Errorf("--since: %w", err))
				}
			}
			st, err := openStoreForRepair(cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			if deadLetter {
				n, err := st.RequeueAllDeadLetters(sinkName)
				if err != nil {
					return failure(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "requeued %d dead-lettered event(s) to %s\n", n, sinkName)
				return nil
			}
			n := 0
			now := time.Now().UTC()
			err = st.Update(func(tx *store.Tx) error {
				return tx.ForEachIncident(instance, func(r *store.IncidentRecord) error {
					if (issueID != "" && r.IssueID != issueID) || (!from.IsZero() && r.UpdatedAt.Before(from)) || len(r.Incident) == 0 {
						return nil
					}
					kind := incident.KindUpdated
					if r.Version <= 1 {
						kind = incident.KindCreated
					}
					ev := incident.Event{
						EventID: r.LastEventID, Kind: kind, Instance: r.Instance, IssueID: r.IssueID,
						IssueStatus: r.Status, EmittedAt: now.UTC().Format(time.RFC3339), Incident: r.Incident,
					}
					line, err := ev.Line()
					if err != nil {
						return fmt.Errorf("event line of issue %s: %w", r.IssueID, err)
					}
					if _, err := tx.Enqueue(sinkName, r.Instance, line); err != nil {
						return err
					}
					n++
					return nil
				})
			})
			if err != nil {
				return failure(fmt.Errorf("replay: %w", err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "queued %d event(s) for %s; they are delivered on the next run\n", n, sinkName)
			return nil
		},
	}
	cmd.Flags().StringVar(&sinkName, "sink", "", "the sink to re-send to (required)")
	cmd.Flags().StringVar(&since, "since", "", "only incidents updated since (RFC 3339 or a duration ago, e.g. 2d)")
	cmd.Flags().StringVar(&issueID, "issue", "", "only this issue id")
	cmd.Flags().StringVar(&instance, "instance", "", "only this instance")
	cmd.Flags().BoolVar(&deadLetter, "dead-letter", false, "requeue the sink's dead letter instead")
	_ = cmd.MarkFlagRequired("sink")
	return cmd
}

func newDeadLetterCommand(env *Env) *cobra.Command {
	var sinkName string
	var limit int
	cmd := &cobra.Command{
		Use:   "dead-letter --sink NAME",
		Short: "List events a sink rejected for good, with the reason",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			path := fmt.Sprintf("/v1/dead-letters?sink=%s&limit=%d", queryEscape(sinkName), limit)
			return viewThroughDaemon(cmd, cfg, path, func(st *store.Store) (any, error) {
				dls, err := st.DeadLetters(sinkName, limit)
				if err != nil {
					return nil, err
				}
				out := make([]server.DeadLetterDoc, 0, len(dls))
				for _, d := range dls {
					out = append(out, server.DeadLetterDocOf(d))
				}
				return out, nil
			})
		},
	}
	cmd.Flags().StringVar(&sinkName, "sink", "", "the sink (required)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	_ = cmd.MarkFlagRequired("sink")
	return cmd
}
