package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/server"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// newRejectedCommand is `wizfetch incidents rejected`: the issues Wiz returned that could not be
// incidents (a required field null, too large once clipped, a mapping that failed), with the reason
// and the node as sent. Like `incidents dead-letter` it asks the running daemon's API first and reads
// the store read-only when no daemon answers; both print the same documents.
func newRejectedCommand(env *Env) *cobra.Command {
	var instance string
	var limit int
	cmd := &cobra.Command{
		Use:   "rejected [--instance NAME] [--limit N]",
		Short: "List issues that could not be incidents, with the reason and the node Wiz sent",
		Long: `List the issues the pipeline rejected: Wiz returned them, but they could not be turned into
incidents (incomplete: a required field is null; too_large: the incident stays too large once
clipped; mapping_failed). Each is listed once, with how often and when it was met, the reason, and the
node as Wiz sent it. A later complete version of an issue is processed as usual and removes its record.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > server.MaxRejectedLimit {
				return usageError(fmt.Errorf("--limit must be from 1 to %d", server.MaxRejectedLimit))
			}
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			path := fmt.Sprintf("/v1/rejected-issues?instance=%s&limit=%d", queryEscape(instance), limit)
			return viewThroughDaemon(cmd, cfg, path, func(st *store.Store) (any, error) {
				recs, err := st.RejectedIssues(instance, limit)
				if err != nil {
					return nil, err
				}
				out := make([]server.RejectedIssueDoc, 0, len(recs))
				for _, r := range recs {
					out = append(out, server.RejectedIssueDocOf(r))
				}
				return out, nil
			})
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "only this instance")
	cmd.Flags().IntVar(&limit, "limit", server.DefaultRejectedLimit, "at most this many")
	return cmd
}
