package cli

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// newIssueContextCommand is `wizfetch issue context ID`: the resource behind an issue, its project
// teams and its evidence, asked of Wiz as the Wiz XSOAR pack asks (wiz.Client.IssueContext); the
// daemon serves the same at GET /v1/issues/{id}/context.
func newIssueContextCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "context ID",
		Short: "Show the resource behind an issue, its project teams and its evidence (--json: all of it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := writeback.ValidateIssueID(args[0]); err != nil {
				return usageError(err)
			}
			c, _, err := issueClient(cmd, env, stderrLogger(cmd.ErrOrStderr(), slog.LevelWarn))
			if err != nil {
				return err
			}
			ic, err := c.IssueContext(cmd.Context(), strings.ToLower(strings.TrimSpace(args[0])))
			if err != nil {
				return failure(err)
			}
			out := cmd.OutOrStdout()
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return writeJSON(out, ic)
			}
			return printIssueContext(cmd, ic)
		},
	}
}

func printIssueContext(cmd *cobra.Command, ic *wiz.IssueContext) error {
	var b strings.Builder
	fmt.Fprintf(&b, "issue     %s (%s)\n", ic.IssueID, ic.IssueType)
	if string(ic.Resource) != "null" {
		fmt.Fprintf(&b, "resource  %s\n", ic.ResourceProviderID)
	} else {
		fmt.Fprintf(&b, "resource  none found\n")
	}
	for _, p := range ic.Projects {
		switch {
		case p.Skipped:
			fmt.Fprintf(&b, "project   %s (not looked up)\n", p.Name)
		case !p.Found:
			fmt.Fprintf(&b, "project   %s (not found)\n", p.Name)
		default:
			fmt.Fprintf(&b, "project   %s  owners: %s  champions: %s\n", p.Name, members(p.ProjectOwners), members(p.SecurityChampions))
		}
	}
	fmt.Fprintf(&b, "evidence  %s (%d bytes; --json shows it)\n", ic.EvidenceKind, len(ic.Evidence))
	for _, e := range ic.Errors {
		fmt.Fprintf(&b, "failed    %s\n", e)
	}
	_, err := fmt.Fprint(cmd.OutOrStdout(), b.String())
	return err
}

func members(ms []wiz.TeamMember) string {
	if len(ms) == 0 {
		return "-"
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
		if m.Email != "" {
			out[i] += " <" + m.Email + ">"
		}
	}
	return strings.Join(out, ", ")
}
