package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// newIssueCommand is `wizfetch issue ...`: read one issue and write back to Wiz (DESIGN.md §4).
func newIssueCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Read a Wiz issue or change it: resolve, reject, reopen, in-progress, note, due dates",
		Long: `Read a Wiz issue or change it through Wiz's API, with the same client, credentials and rate
limit as the daemon. Issue ids are UUIDs. Wiz accepts these resolution reasons:
  resolve: ` + strings.Join(wizdef.ResolveReasons(), ", ") + `
  reject:  ` + strings.Join(wizdef.RejectReasons(), ", ") + `
Only ` + wizdef.TypeThreatDetection + ` issues can be resolved; reject other issues instead. Notes are cut to ` + fmt.Sprint(wiz.MaxNoteLen) + `
characters, marker included. Every change writes an audit line (JSON) to stderr.`,
	}
	cmd.PersistentFlags().String("instance", "", "the instance (tenant) to use; required when several are configured")
	cmd.PersistentFlags().Bool("json", false, "print the result as JSON")

	cmd.AddCommand(&cobra.Command{
		Use:   "get ID",
		Short: "Show one issue (--json: the issue JSON as Wiz returns it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runIssueGet(cmd, env, args[0])
		},
	})

	resolve := actionCommand(env, writeback.KindResolve, "resolve ID --reason R [--note N]",
		"Resolve a THREAT_DETECTION issue (other types: use reject)", cobra.ExactArgs(1), "reason", "note")
	reject := actionCommand(env, writeback.KindReject, "reject ID --reason R --note N",
		"Reject an issue with a resolution reason and a note", cobra.ExactArgs(1), "reason", "note")
	reopen := actionCommand(env, writeback.KindReopen, "reopen ID [--note N]",
		"Set an issue back to OPEN", cobra.ExactArgs(1), "note")
	inProgress := actionCommand(env, writeback.KindInProgress, "in-progress ID [--note N]",
		"Set an issue to IN_PROGRESS", cobra.ExactArgs(1), "note")
	note := actionCommand(env, writeback.KindNote, "note ID TEXT",
		fmt.Sprintf("Add a note to an issue (cut to %d characters, marker included)", wiz.MaxNoteLen), cobra.MinimumNArgs(2))
	due := actionCommand(env, writeback.KindDueDate, "due-date ID YYYY-MM-DD",
		"Set an issue's due date (midnight UTC)", cobra.ExactArgs(2))
	clearDue := actionCommand(env, writeback.KindClearDueDate, "clear-due-date ID",
		"Remove an issue's due date", cobra.ExactArgs(1))
	cmd.AddCommand(resolve, reject, reopen, inProgress, note, due, clearDue, newIssueContextCommand(env))
	return cmd
}

// actionCommand builds one write-back subcommand; flags names the optional flags it takes.
func actionCommand(env *Env, kind, use, short string, args cobra.PositionalArgs, flags ...string) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			a := writeback.Action{Kind: kind, IssueID: args[0]}
			switch kind {
			case writeback.KindNote:
				a.Text = strings.Join(args[1:], " ")
			case writeback.KindDueDate:
				a.DueDate = args[1]
			}
			if cmd.Flags().Lookup("reason") != nil {
				a.Reason, _ = cmd.Flags().GetString("reason")
			}
			if cmd.Flags().Lookup("note") != nil {
				a.Note, _ = cmd.Flags().GetString("note")
			}
			return runIssueAction(cmd, env, a)
		},
	}
	for _, f := range flags {
		switch f {
		case "reason":
			c.Flags().String("reason", "", "resolution reason: "+strings.Join(writeback.Reasons(kind), ", "))
		case "note":
			c.Flags().String("note", "", fmt.Sprintf("a note attached to the change (cut to %d characters, marker included)", wiz.MaxNoteLen))
		}
	}
	return c
}

// issueClient loads the config and builds the client of the chosen instance.
func issueClient(cmd *cobra.Command, env *Env, log *slog.Logger) (*wiz.Client, string, error) {
	cfg, err := loadConfig(cmd, configPath(cmd, env))
	if err != nil {
		return nil, "", err
	}
	if err := cfg.ResolveSecrets(); err != nil {
		return nil, "", usageError(err)
	}
	inst, err := pickInstance(cfg, cmd)
	if err != nil {
		return nil, "", usageError(err)
	}
	opts := wiz.OptionsFromConfig(inst.Wiz, env.Version)
	opts.Logger = log
	c, err := wiz.New(cmd.Context(), opts)
	if err != nil {
		return nil, "", usageError(fmt.Errorf("instance %s: %w", inst.Name, err))
	}
	return c, inst.Name, nil
}

// pickInstance returns the --instance one, or the only one.
func pickInstance(cfg *config.Config, cmd *cobra.Command) (config.Instance, error) {
	name, _ := cmd.Flags().GetString("instance")
	names := make([]string, len(cfg.Instances))
	for i, inst := range cfg.Instances {
		if inst.Name == name || (name == "" && len(cfg.Instances) == 1) {
			return inst, nil
		}
		names[i] = inst.Name
	}
	if name == "" {
		return config.Instance{}, fmt.Errorf("several instances are configured: choose one with --instance (%s)", strings.Join(names, ", "))
	}
	return config.Instance{}, fmt.Errorf("unknown instance %q (configured: %s)", name, strings.Join(names, ", "))
}

// stderrLogger returns a JSON logger on stderr at level: the audit line (Info) and the client's
// warnings.
func stderrLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

func runIssueGet(cmd *cobra.Command, env *Env, id string) error {
	if err := writeback.ValidateIssueID(id); err != nil {
		return usageError(err)
	}
	c, _, err := issueClient(cmd, env, stderrLogger(cmd.ErrOrStderr(), slog.LevelWarn))
	if err != nil {
		return err
	}
	iss, raw, err := c.Issue(cmd.Context(), strings.ToLower(strings.TrimSpace(id)))
	if err != nil {
		return failure(err)
	}
	out := cmd.OutOrStdout()
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		_, err := fmt.Fprintf(out, "%s\n", raw)
		return err
	}
	rule := "No sourceRule"
	if r := iss.Rule(); r != nil && r.Name != "" {
		rule = r.Name
	}
	line := fmt.Sprintf("%s  %s  %s  %s  %q  created %s", iss.ID, iss.Type, iss.Severity, iss.Status, rule,
		iss.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"))
	if iss.DueAt != nil {
		line += "  due " + iss.DueAt.UTC().Format("2006-01-02")
	}
	if len(iss.Notes) > 0 {
		line += fmt.Sprintf("  %d notes", len(iss.Notes))
	}
	_, err = fmt.Fprintln(out, line)
	return err
}

func runIssueAction(cmd *cobra.Command, env *Env, a writeback.Action) error {
	// Validate before touching the config or the network: bad input is a usage error (exit 2).
	if err := a.Validate(); err != nil {
		return usageError(err)
	}
	audit := stderrLogger(cmd.ErrOrStderr(), slog.LevelInfo)
	c, inst, err := issueClient(cmd, env, stderrLogger(cmd.ErrOrStderr(), slog.LevelWarn))
	if err != nil {
		return err
	}
	res, err := writeback.Do(cmd.Context(), c, a)
	writeback.Audit(cmd.Context(), audit, "cli", cliActor(env), inst, a, err)
	if err != nil {
		if errors.Is(err, writeback.ErrInvalid) || errors.Is(err, writeback.ErrNotAllowed) {
			return usageError(err)
		}
		return failure(err)
	}
	out := cmd.OutOrStdout()
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		return json.NewEncoder(out).Encode(res)
	}
	_, err = fmt.Fprintln(out, describeResult(res))
	return err
}

// cliActor names who ran the command, for the audit line.
func cliActor(env *Env) string {
	for _, k := range []string{"USER", "LOGNAME", "USERNAME"} {
		if v := env.Getenv(k); v != "" {
			return v
		}
	}
	return "unknown"
}

// describeResult is the one-line human summary of an action.
func describeResult(r writeback.Result) string {
	var s string
	switch r.Action {
	case writeback.KindResolve:
		s = fmt.Sprintf("resolved issue %s (status %s)", r.IssueID, r.Status)
	case writeback.KindReject:
		s = fmt.Sprintf("rejected issue %s (status %s)", r.IssueID, r.Status)
	case writeback.KindReopen:
		s = fmt.Sprintf("reopened issue %s (status %s)", r.IssueID, r.Status)
		if r.NoteID != "" {
			s += ", added note " + r.NoteID
		}
	case writeback.KindInProgress:
		s = fmt.Sprintf("issue %s is in progress (status %s)", r.IssueID, r.Status)
		if r.NoteID != "" {
			s += ", added note " + r.NoteID
		}
	case writeback.KindNote:
		s = fmt.Sprintf("added note %s to issue %s", r.NoteID, r.IssueID)
	case writeback.KindDueDate:
		s = fmt.Sprintf("issue %s is due %s", r.IssueID, r.DueAt)
	case writeback.KindClearDueDate:
		s = fmt.Sprintf("cleared the due date of issue %s", r.IssueID)
	default:
		s = fmt.Sprintf("%s issue %s", r.Action, r.IssueID)
	}
	if r.NoteTruncated {
		s += fmt.Sprintf(" (note cut to %d characters, marker included)", wiz.MaxNoteLen)
	}
	return s
}
