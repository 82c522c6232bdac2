package readcheck

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
	"mailplane/projections/postgres"
)

// The usage tables hold measurements (the mail store's reports), which no event decides: which
// rows exist and how many bytes they hold are not checked. What they also hold is judged from
// the effective limits, which the events do decide: whether each mailbox and each domain is at
// or over its warning line, and a domain's effective limit and warning percent. Those are
// resolved here with the domain package's rules (domain.EffectiveAccount, EffectiveDomain,
// OverWarnLine) over this fold's states, where the projection resolves them in SQL
// (projections/postgres/usage.go): two implementations of one rule.
//
// The judgement follows the limits only once the admin projection has passed the replay mark
// (quota_recheck_mark): the events a rebuild replays below it judge nothing, by design, so
// until then the stored judgements are those of the final limits, not of the checkpoint's.

// usageTables are the checked usage tables, in report order.
var usageTables = []string{"mailbox_usage", "domain_usage"}

// effective gives the limits of the fold's objects as the read models would resolve them.
type effective struct {
	g   domain.GlobalConfig
	cos map[string]domain.COS
	f   *fold
}

func (f *fold) effective() effective {
	g := domain.DefaultGlobalConfig()
	if o := f.config["1"]; o != nil {
		g = o.state.WithDefaults()
	}
	cos := map[string]domain.COS{}
	for name, o := range f.cos {
		if o.state.Exists() {
			cos[name] = o.state
		}
	}
	return effective{g: g, cos: cos, f: f}
}

// account returns a live account's effective quota and warning percent.
func (e effective) account(address string) (limit int64, warn int, ok bool) {
	o := e.f.accounts[address]
	if o == nil || !o.state.Exists() {
		return 0, 0, false
	}
	d := e.f.domains[o.domain]
	if d == nil {
		return 0, 0, false
	}
	name, _ := domain.EffectiveCOSName(e.g, d.state, o.state)
	var c *domain.COS
	if x, found := e.cos[name]; found {
		c = &x
	}
	v := domain.EffectiveAccount(e.g, d.state, c, o.state).Values
	return v["mail_quota_bytes"].(int64), v["quota_warn_percent"].(int), true
}

// domainLimits returns a domain's effective quota and warning percent.
func (e effective) domainLimits(name string) (limit int64, warn int, ok bool) {
	d := e.f.domains[name]
	if d == nil {
		return 0, 0, false
	}
	v := domain.EffectiveDomain(e.g, d.state).Values
	return v["domain_quota_bytes"].(int64), v["warn_percent"].(int), true
}

// compareUsage checks the judged columns of the usage tables.
func compareUsage(ctx context.Context, db Querier, schema string, f *fold, admin checkpoint) ([]TableReport, error) {
	var out []TableReport
	var mark int64
	err := db.QueryRow(ctx, `SELECT coalesce((SELECT replayed_until FROM quota_recheck_mark WHERE id = 1), 0)`).Scan(&mark)
	if err != nil {
		return nil, fmt.Errorf("readcheck: replay mark: %w", err)
	}
	eff := f.effective()
	for _, name := range usageTables {
		tr := TableReport{Table: name, Projection: postgres.AdminName}
		exists, err := tableExists(ctx, db, schema, name)
		switch {
		case err != nil:
			return nil, err
		case !exists && schema == "public":
			return nil, fmt.Errorf("readcheck: no table public.%s (are the migrations applied?)", name)
		case !exists:
			tr.Absent = true
		case admin.at.Position < mark:
			tr.Skipped = fmt.Sprintf("the admin projection (position %d) is replaying history up to position %d, which judges no usage", admin.at.Position, mark)
		default:
			if err := judge(ctx, db, schema, name, eff, &tr); err != nil {
				return nil, err
			}
		}
		out = append(out, tr)
	}
	return out, nil
}

func judge(ctx context.Context, db Querier, schema, name string, eff effective, tr *TableReport) error {
	q := `SELECT address AS k, domain, used_bytes, 0::bigint, 0, over_warn FROM {s}.mailbox_usage`
	if name == "domain_usage" {
		q = `SELECT domain AS k, domain, used_bytes, limit_bytes, warn_percent, over_warn FROM {s}.domain_usage`
	}
	rows, err := db.Query(ctx, `SELECT * FROM (`+inSchema(q, schema)+`) s ORDER BY k COLLATE "C"`)
	if err != nil {
		return fmt.Errorf("readcheck: read %s.%s: %w", schema, name, err)
	}
	defer rows.Close()
	var (
		key, dom          string
		used, storedLimit int64
		storedWarn        int
		over              bool
	)
	differs := func(col, want, got string) {
		tr.Differences++
		if tr.First == nil {
			tr.First = &Difference{Kind: Differs, Key: key, Column: col, Expected: want, Got: got}
		}
	}
	for rows.Next() {
		if err := rows.Scan(&key, &dom, &used, &storedLimit, &storedWarn, &over); err != nil {
			return fmt.Errorf("readcheck: read %s.%s: %w", schema, name, err)
		}
		if name == "domain_usage" {
			limit, warn, ok := eff.domainLimits(key)
			if !ok {
				continue // a removed domain's row is history; nothing judges it any more
			}
			tr.Rows++
			switch want := domain.OverWarnLine(used, limit, warn); {
			case storedLimit != limit:
				differs("limit_bytes", strconv.FormatInt(limit, 10), strconv.FormatInt(storedLimit, 10))
			case storedWarn != warn:
				differs("warn_percent", strconv.Itoa(warn), strconv.Itoa(storedWarn))
			case over != want:
				differs("over_warn", strconv.FormatBool(want), strconv.FormatBool(over))
			}
			continue
		}
		tr.Rows++
		limit, warn, ok := eff.account(key)
		// A deleted account's usage is forgotten: zero, and over nothing.
		want := ok && domain.OverWarnLine(used, limit, warn)
		switch {
		case ok && dom != eff.f.accounts[key].domain:
			differs("domain", strconv.Quote(eff.f.accounts[key].domain), strconv.Quote(dom))
		case over != want:
			differs("over_warn", strconv.FormatBool(want), strconv.FormatBool(over))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("readcheck: read %s.%s: %w", schema, name, err)
	}
	return nil
}

func tableExists(ctx context.Context, db Querier, schema, name string) (bool, error) {
	var exists bool
	if err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, name}.Sanitize()).Scan(&exists); err != nil {
		return false, fmt.Errorf("readcheck: %s.%s: %w", schema, name, err)
	}
	return exists, nil
}
