package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"mailplane/domain"
)

// Mailbox usage lives beside the read models: the mail store's measurements (mailbox_usage,
// domain_usage, migration 00012) joined with the effective limits the admin projection's tables
// give. The SQL below resolves an account's limits the way domain.EffectiveAccount does —
// account override, then its COS (its own, the domain's default, the global default), then the
// global configuration — and a domain's as domain.EffectiveDomain; TestUsageLimitsMatchDomain
// holds them together. The global values come in as parameters, so that the built-in defaults
// have one home (domain.DefaultGlobalConfig).

const (
	// limitsJoin needs rm_accounts a.
	limitsJoin = ` JOIN rm_domains d ON d.name = a.domain
		LEFT JOIN rm_cos c ON c.name = coalesce(a.cos, d.default_cos, @g_cos) AND NOT c.deleted `
	accountLimitSQL = `coalesce((a.state->>'MailQuotaBytes')::bigint, (c.state->>'MailQuotaBytes')::bigint, @g_account_quota::bigint)`
	accountWarnSQL  = `coalesce((c.state->>'QuotaWarnPercent')::int, (d.state->'Limits'->>'warn_percent')::int, @g_warn::int)`
	domainLimitSQL  = `coalesce((d.state->'Limits'->>'domain_quota_bytes')::bigint, @g_domain_quota::bigint)`
	domainWarnSQL   = `coalesce((d.state->'Limits'->>'warn_percent')::int, @g_warn::int)`
)

// overSQL is domain.OverWarnLine in SQL (numeric, so that nothing overflows).
func overSQL(used, limit, warn string) string {
	return fmt.Sprintf("(%[2]s > 0 AND %[3]s > 0 AND (%[1]s)::numeric * 100 >= (%[2]s)::numeric * (%[3]s))", used, limit, warn)
}

func globalArgs(g domain.GlobalConfig) pgx.NamedArgs {
	g = g.WithDefaults()
	return pgx.NamedArgs{"g_cos": g.DefaultCOS, "g_account_quota": g.AccountQuotaBytes, "g_domain_quota": g.DomainQuotaBytes,
		"g_warn": g.WarnPercent}
}

// UsageResult is what one batch did.
type UsageResult struct {
	// Stored counts the reports stored (those of existing accounts).
	Stored int
	// Unknown are the addresses that name no account (never created, deleted, or an alias):
	// their reports were not stored.
	Unknown []string
	// Crossings are the warning lines this batch crossed, each found by this batch alone.
	Crossings []domain.QuotaCrossing
}

// quotaLock orders usage batches against limit changes. A batch judges its rows against the
// limits its statement's snapshot shows; a limit change the projection has written but not yet
// committed is invisible to it, and the batch would set a crossing state that the change's own
// recheck, already done, has judged otherwise. So a batch holds the lock shared from before its
// snapshot to its commit, and the projection holds it exclusively from before its recheck to its
// commit: either the batch sees the new limits, or the recheck sees the batch's usage.
const quotaLock = 0x6d70_7175_6f74_61 // "mpquota"

// LockQuotaShared is taken by a usage batch before it reads anything (LockQuotaExclusive).
func LockQuotaShared(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, int64(quotaLock))
	return err
}

// LockQuotaExclusive is taken by a limit change before it judges the usage again.
func LockQuotaExclusive(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(quotaLock))
	return err
}

// storeUsageSQL is StoreUsage's one statement.
var storeUsageSQL = `WITH input AS (
			SELECT * FROM unnest(@addresses::text[], @used::bigint[]) AS r(address, used)
		), known AS (
			SELECT i.address, a.domain, i.used, ` + accountLimitSQL + ` AS limit_bytes, ` + accountWarnSQL + ` AS warn_percent
			FROM input i JOIN rm_accounts a ON a.address = i.address AND NOT a.deleted` + limitsJoin + `
		), judged AS (
			SELECT k.*, ` + overSQL("k.used", "k.limit_bytes", "k.warn_percent") + ` AS over FROM known k ORDER BY k.address
		), up AS (
			INSERT INTO mailbox_usage AS u (address, domain, used_bytes, previous_used_bytes, over_warn, crossings, crossed_xact, reported_at)
			SELECT address, domain, used, 0, over, over::int, CASE WHEN over THEN pg_current_xact_id() END, @now FROM judged
			ON CONFLICT (address) DO UPDATE SET domain = excluded.domain, used_bytes = excluded.used_bytes,
				previous_used_bytes = u.used_bytes, over_warn = excluded.over_warn,
				crossings = u.crossings + (excluded.over_warn AND NOT u.over_warn)::int,
				crossed_xact = CASE WHEN excluded.over_warn AND NOT u.over_warn THEN pg_current_xact_id() ELSE u.crossed_xact END,
				reported_at = excluded.reported_at
			RETURNING address, domain, used_bytes, used_bytes - previous_used_bytes AS delta, crossings,
				coalesce(crossed_xact = pg_current_xact_id(), false) AS crossed
		), deltas AS (
			SELECT x.domain, x.delta, ` + domainLimitSQL + ` AS limit_bytes, ` + domainWarnSQL + ` AS warn_percent
			FROM (SELECT domain, sum(delta)::bigint AS delta FROM up GROUP BY domain) x JOIN rm_domains d ON d.name = x.domain
			ORDER BY x.domain
		), dom AS (
			INSERT INTO domain_usage AS du (domain, used_bytes, limit_bytes, warn_percent, over_warn, crossings, crossed_xact)
			SELECT domain, delta, limit_bytes, warn_percent, ` + overSQL("delta", "limit_bytes", "warn_percent") + `,
				` + overSQL("delta", "limit_bytes", "warn_percent") + `::int,
				CASE WHEN ` + overSQL("delta", "limit_bytes", "warn_percent") + ` THEN pg_current_xact_id() END
			FROM deltas
			ON CONFLICT (domain) DO UPDATE SET used_bytes = du.used_bytes + excluded.used_bytes,
				limit_bytes = excluded.limit_bytes, warn_percent = excluded.warn_percent,
				over_warn = ` + overSQL("du.used_bytes + excluded.used_bytes", "excluded.limit_bytes", "excluded.warn_percent") + `,
				crossings = du.crossings + (` + overSQL("du.used_bytes + excluded.used_bytes", "excluded.limit_bytes", "excluded.warn_percent") + ` AND NOT du.over_warn)::int,
				crossed_xact = CASE WHEN ` + overSQL("du.used_bytes + excluded.used_bytes", "excluded.limit_bytes", "excluded.warn_percent") + ` AND NOT du.over_warn
					THEN pg_current_xact_id() ELSE du.crossed_xact END
			RETURNING domain, used_bytes, limit_bytes, warn_percent, crossings, coalesce(crossed_xact = pg_current_xact_id(), false) AS crossed
		)
		SELECT 'account', u.address, u.domain, u.crossings, u.used_bytes, j.limit_bytes, j.warn_percent
			FROM up u JOIN judged j USING (address) WHERE u.crossed
		UNION ALL SELECT 'domain', domain, domain, crossings, used_bytes, limit_bytes, warn_percent FROM dom WHERE crossed
		UNION ALL SELECT 'unknown', i.address, '', 0, 0, 0, 0 FROM input i WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.address = i.address)
		UNION ALL SELECT 'stored', '', '', count(*), 0, 0, 0 FROM up`

// StoreUsage writes a batch of reports (already checked, no address twice) in one statement:
// the usage of each known account, its domain's total moved by the difference, and each
// crossing state compared and set in the same row update (the row lock orders concurrent
// batches, so a crossing is seen by exactly one of them). Rows are written in address order,
// domains in name order, so that two batches lock in the same order. g is the global
// configuration as the read model has it.
func StoreUsage(ctx context.Context, tx pgx.Tx, g domain.GlobalConfig, reports []domain.UsageReport, now time.Time) (UsageResult, error) {
	addrs := make([]string, len(reports))
	used := make([]int64, len(reports))
	for i, r := range reports {
		addrs[i], used[i] = r.Address.String(), r.UsedBytes
	}
	args := globalArgs(g)
	args["addresses"], args["used"], args["now"] = addrs, used, now
	rows, err := tx.Query(ctx, storeUsageSQL, args)
	if err != nil {
		return UsageResult{}, fmt.Errorf("usage: store: %w", err)
	}
	var res UsageResult
	if err := scanCrossings(rows, &res); err != nil {
		return UsageResult{}, fmt.Errorf("usage: store: %w", err)
	}
	return res, nil
}

// scanCrossings reads rows of (scope, name, domain, crossings, used, limit, warn) into res.
func scanCrossings(rows pgx.Rows, res *UsageResult) error {
	defer rows.Close()
	for rows.Next() {
		var x domain.QuotaCrossing
		if err := rows.Scan(&x.Scope, &x.Name, &x.Domain, &x.Crossing, &x.UsedBytes, &x.LimitBytes, &x.WarnPercent); err != nil {
			return err
		}
		switch x.Scope {
		case "unknown":
			res.Unknown = append(res.Unknown, x.Name)
		case "stored":
			res.Stored = int(x.Crossing)
		default:
			res.Crossings = append(res.Crossings, x)
		}
	}
	return rows.Err()
}

// RecheckScope names whose limits changed: one account, the accounts using a COS, a domain (its
// accounts and its total), or everything (the global configuration).
type RecheckScope struct {
	Address string
	COS     string
	Domain  string
	All     bool
}

// RecheckQuota judges the stored usage again against the effective limits now in the read
// model, after a change of limits: a limit lowered under the usage is a crossing (returned, to
// be warned of), one raised over it re-arms the warning. Rows that do not change side are left
// alone; each row is locked (in address order) before it is judged, so a concurrent batch and a
// recheck cannot both count one crossing.
func RecheckQuota(ctx context.Context, tx pgx.Tx, g domain.GlobalConfig, scope RecheckScope) ([]domain.QuotaCrossing, error) {
	args := globalArgs(g)
	var accountWhere, domainWhere string
	switch {
	case scope.All:
		accountWhere, domainWhere = "true", "true"
	case scope.Address != "":
		accountWhere, domainWhere, args["address"] = "u.address = @address", "", scope.Address
	case scope.COS != "":
		accountWhere, domainWhere, args["cos"] = "coalesce(a.cos, d.default_cos, @g_cos) = @cos", "", scope.COS
	case scope.Domain != "":
		accountWhere, domainWhere, args["domain"] = "u.domain = @domain", "du.domain = @domain", scope.Domain
	default:
		return nil, nil
	}
	var res UsageResult
	rows, err := tx.Query(ctx, `WITH cur AS (
			SELECT u.address, u.over_warn AS was_over, `+overSQL("u.used_bytes", accountLimitSQL, accountWarnSQL)+` AS over,
				`+accountLimitSQL+` AS limit_bytes, `+accountWarnSQL+` AS warn_percent
			FROM mailbox_usage u JOIN rm_accounts a ON a.address = u.address AND NOT a.deleted`+limitsJoin+`
			WHERE `+accountWhere+` ORDER BY u.address FOR UPDATE OF u
		)
		UPDATE mailbox_usage u SET over_warn = c.over, crossings = u.crossings + (c.over AND NOT c.was_over)::int,
			crossed_xact = CASE WHEN c.over AND NOT c.was_over THEN pg_current_xact_id() ELSE u.crossed_xact END
		FROM cur c WHERE u.address = c.address AND c.over <> c.was_over
		RETURNING CASE WHEN u.over_warn THEN 'account' ELSE 'rearmed' END, u.address, u.domain, u.crossings, u.used_bytes,
			c.limit_bytes, c.warn_percent`, args)
	if err != nil {
		return nil, fmt.Errorf("usage: recheck accounts: %w", err)
	}
	if err := scanCrossings(rows, &res); err != nil {
		return nil, fmt.Errorf("usage: recheck accounts: %w", err)
	}
	if domainWhere != "" {
		rows, err := tx.Query(ctx, `WITH cur AS (
				SELECT du.domain, du.used_bytes, du.over_warn AS was_over, `+domainLimitSQL+` AS limit_bytes, `+domainWarnSQL+` AS warn_percent
				FROM domain_usage du JOIN rm_domains d ON d.name = du.domain
				WHERE `+domainWhere+` ORDER BY du.domain FOR UPDATE OF du
			), judged AS (
				SELECT cur.*, `+overSQL("cur.used_bytes", "cur.limit_bytes", "cur.warn_percent")+` AS over FROM cur
			)
			UPDATE domain_usage du SET limit_bytes = j.limit_bytes, warn_percent = j.warn_percent, over_warn = j.over,
				crossings = du.crossings + (j.over AND NOT j.was_over)::int,
				crossed_xact = CASE WHEN j.over AND NOT j.was_over THEN pg_current_xact_id() ELSE du.crossed_xact END
			FROM judged j WHERE du.domain = j.domain
				AND (j.over <> j.was_over OR du.limit_bytes <> j.limit_bytes OR du.warn_percent <> j.warn_percent)
			RETURNING CASE WHEN j.over AND NOT j.was_over THEN 'domain' ELSE 'rearmed' END, du.domain, du.domain, du.crossings,
				du.used_bytes, du.limit_bytes, du.warn_percent`, args)
		if err != nil {
			return nil, fmt.Errorf("usage: recheck domains: %w", err)
		}
		if err := scanCrossings(rows, &res); err != nil {
			return nil, fmt.Errorf("usage: recheck domains: %w", err)
		}
	}
	out := res.Crossings[:0]
	for _, x := range res.Crossings {
		if x.Scope != "rearmed" {
			out = append(out, x)
		}
	}
	return out, nil
}

// ForgetUsage empties a deleted account's usage and takes it off its domain's total (which may
// bring the domain back under its line: that re-arms its warning). The row itself stays, with
// its count of crossings: an account created again at the address continues the count, so that
// its next warning is not taken for one already sent (the warning's job and mail are unique per
// crossing number).
func ForgetUsage(ctx context.Context, tx pgx.Tx, address string) error {
	_, err := tx.Exec(ctx, `WITH gone AS (
			SELECT address, domain, used_bytes FROM mailbox_usage WHERE address = $1 FOR UPDATE
		), emptied AS (
			UPDATE mailbox_usage u SET used_bytes = 0, previous_used_bytes = 0, over_warn = false
			FROM gone g WHERE u.address = g.address
		)
		UPDATE domain_usage du SET used_bytes = du.used_bytes - g.used_bytes,
			over_warn = du.over_warn AND `+overSQL("du.used_bytes - g.used_bytes", "du.limit_bytes", "du.warn_percent")+`
		FROM gone g WHERE du.domain = g.domain`, address)
	if err != nil {
		return fmt.Errorf("usage: forget %s: %w", address, err)
	}
	return nil
}

// MarkReplay records that the events up to the newest one are history: a rebuild replaying
// them must not judge usage against the limits of the past (and warn of crossings long gone).
func MarkReplay(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `INSERT INTO quota_recheck_mark (id, replayed_until) SELECT 1, coalesce(max(position), 0) FROM events
		ON CONFLICT (id) DO UPDATE SET replayed_until = excluded.replayed_until`)
	return err
}

// QuotaAccount is one account's usage against its effective limits.
type QuotaAccount struct {
	Address     string
	UsedBytes   int64
	LimitBytes  int64
	WarnPercent int
	// Percent is used/limit in percent, rounded to 0.01; nil without a limit.
	Percent    *float64
	ReportedAt *time.Time
	// sortKey is the exact rounded percent (-1 without a limit), the cursor's first half.
	sortKey string
}

// QuotaCursor is where a page of QuotaAccounts ends.
func (q QuotaAccount) QuotaCursor() string { return q.sortKey + "|" + q.Address }

// DomainUsage is a domain's total usage as the batches left it.
type DomainUsage struct {
	UsedBytes  int64
	ReportedAt *time.Time
}

// ErrBadCursor means a cursor is not one QuotaCursor made.
var ErrBadCursor = errors.New("not a cursor this API returned")

// QuotaAccounts returns a page of a domain's accounts by percent used, highest first (ties and
// accounts without a limit, which come last, by address). after is the previous page's last
// QuotaCursor, or "".
func (r *ReadModel) QuotaAccounts(ctx context.Context, g domain.GlobalConfig, domainName string, limit int, after string) ([]QuotaAccount, error) {
	args := globalArgs(g)
	args["domain"], args["limit"], args["after_key"], args["after_address"] = domainName, limit, "0", ""
	if after != "" {
		key, addr, ok := strings.Cut(after, "|")
		if _, err := strconv.ParseFloat(key, 64); !ok || err != nil || addr == "" {
			return nil, fmt.Errorf("quota cursor: %w", ErrBadCursor)
		}
		args["after_key"], args["after_address"] = key, addr
	}
	rows, err := r.db.Query(ctx, `SELECT address, used, limit_bytes, warn_percent, reported_at, sort_key::text FROM (
			SELECT a.address, coalesce(u.used_bytes, 0) AS used, `+accountLimitSQL+` AS limit_bytes, `+accountWarnSQL+` AS warn_percent,
				u.reported_at,
				CASE WHEN `+accountLimitSQL+` > 0 THEN round(coalesce(u.used_bytes, 0)::numeric * 100 / `+accountLimitSQL+`, 2)
					ELSE -1 END AS sort_key
			FROM rm_accounts a`+limitsJoin+` LEFT JOIN mailbox_usage u ON u.address = a.address
			WHERE a.domain = @domain AND NOT a.deleted
		) q
		WHERE @after_address = '' OR sort_key < @after_key::numeric OR (sort_key = @after_key::numeric AND address > @after_address)
		ORDER BY sort_key DESC, address LIMIT @limit`, args)
	if err != nil {
		return nil, fmt.Errorf("read model: quota: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (QuotaAccount, error) {
		var q QuotaAccount
		if err := row.Scan(&q.Address, &q.UsedBytes, &q.LimitBytes, &q.WarnPercent, &q.ReportedAt, &q.sortKey); err != nil {
			return q, err
		}
		if q.LimitBytes > 0 {
			p, err := strconv.ParseFloat(q.sortKey, 64)
			if err != nil {
				return q, err
			}
			q.Percent = &p
		}
		if q.ReportedAt != nil {
			t := q.ReportedAt.UTC()
			q.ReportedAt = &t
		}
		return q, nil
	})
}

// DomainUsage returns a domain's total usage (zero before any report).
func (r *ReadModel) DomainUsage(ctx context.Context, domainName string) (DomainUsage, error) {
	var u DomainUsage
	err := r.db.QueryRow(ctx, `SELECT coalesce((SELECT used_bytes FROM domain_usage WHERE domain = $1), 0),
		(SELECT max(reported_at) FROM mailbox_usage WHERE domain = $1)`, domainName).Scan(&u.UsedBytes, &u.ReportedAt)
	if err != nil {
		return u, fmt.Errorf("read model: domain usage: %w", err)
	}
	if u.ReportedAt != nil {
		t := u.ReportedAt.UTC()
		u.ReportedAt = &t
	}
	return u, nil
}
