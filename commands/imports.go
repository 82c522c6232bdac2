package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mailplane/domain"
	"mailplane/eventstore"
)

// ImportAccountsJob applies an import's valid rows.
type ImportAccountsJob struct {
	ImportID    string
	Domain      string
	RequestedBy string
}

// Import is an import as stored, with its rows counted.
type Import struct {
	ID          string
	Domain      string
	SHA256      string
	Format      string
	JobID       int64
	RequestedBy string
	Rows        int
	Applied     int
	Failed      int
	Pending     int
	CreatedAt   time.Time
	FinishedAt  *time.Time
	// Replayed: the same file was imported before; this is that import, and nothing started.
	Replayed bool
}

// ImportProblem is a row that was not applied, and why.
type ImportProblem struct {
	Line    int    `json:"line"`
	Address string `json:"address"`
	Problem string `json:"problem"`
}

// ErrImportNotFound means no import has that id in that domain.
var ErrImportNotFound = fmt.Errorf("import: %w", domain.ErrNotFound)

// importCopyChunk is how many rows go into one COPY while a file is read.
const importCopyChunk = 2000

// StartImport reads an import file, validates every row on its own (everything the account's
// creation checks but what depends on other accounts: an address already in use, the domain's
// account limit), stores the rows and queues the job that applies the valid ones, all in one
// transaction. The same file for the same domain again returns the first import (Replayed) and
// starts nothing. A file that cannot be read at all is an *ImportFileError.
func (s *Service) StartImport(ctx context.Context, req Request, domainName, format string, file io.Reader) (Import, error) {
	if s.jobs == nil {
		return Import{}, ErrNoJobs
	}
	d, err := s.loadDomain(ctx, s.pool, domainName)
	if err != nil {
		return Import{}, err
	}
	if err := d.CheckAcceptsChanges(); err != nil {
		return Import{}, err
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	// The rows go in as they are read, in short transactions of their own: one transaction
	// for the whole file would hold a transaction id for as long as the upload lasts, and every
	// projection in the cluster waits for the oldest one in flight. Until the end the import
	// holds a placeholder for the file's hash (known only then) and has no job; a file that
	// fails, or is found to be a repeat, takes its rows away again.
	if _, err := s.pool.Exec(ctx, `INSERT INTO imports (id, domain, sha256, format, requested_by, rows_total)
		VALUES ($1, $2, $3, $4, $5, 0)`, id, domainName, readingPrefix+id, format, req.Meta.Actor); err != nil {
		return Import{}, err
	}
	kept := false
	defer func() {
		if !kept {
			if _, err := s.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM imports WHERE id = $1`, id); err != nil {
				s.logger.Warn("import: rows of an unfinished upload left behind", "import", id, "err", err)
			}
		}
	}()
	v := &rowValidator{s: s, domain: d, cos: map[string]bool{}, minLength: map[string]int{}}
	var chunk [][]any
	rows := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"import_rows"},
			[]string{"import_id", "line", "address", "data", "secret", "state", "problem"}, pgx.CopyFromRows(chunk))
		chunk = chunk[:0]
		return err
	}
	sum, err := readImport(file, format, func(row ImportRow) error {
		rows++
		addr, problem, err := v.check(ctx, row)
		if err != nil {
			return err
		}
		var address, secret, prob *string
		if addr != "" {
			address = &addr
		}
		state := importPending
		if problem != "" {
			state, prob = importFailed, &problem
		} else if cred := row.credentials(); cred != nil {
			sealed, err := s.keys.Seal(ctx, domainName, cred)
			if err != nil {
				return err
			}
			secret = &sealed
		}
		row.Address, row.LocalPart, row.Password, row.PasswordHash = addr, "", nil, nil
		data, err := json.Marshal(row)
		if err != nil {
			return err
		}
		chunk = append(chunk, []any{id, row.Line, address, string(data), secret, state, prob})
		if len(chunk) >= importCopyChunk {
			return flush()
		}
		return nil
	})
	if err != nil {
		return Import{}, err
	}
	if err := flush(); err != nil {
		return Import{}, err
	}
	// An address given twice: the later rows fail. Asked of the stored rows, not remembered
	// while reading, so that the server's memory does not grow with the file.
	// The duplicates are found first, materialized (a few rows), so that the update is a join
	// on the primary key: the freshly copied rows have no statistics yet, and a plan that joins
	// the window's whole output instead went quadratic.
	if _, err := s.pool.Exec(ctx, `WITH dup AS MATERIALIZED (
			SELECT line, first FROM (SELECT line, min(line) OVER (PARTITION BY address) AS first
				FROM import_rows WHERE import_id = $1 AND address IS NOT NULL) w
			WHERE line > first)
		UPDATE import_rows r
		SET state = 'failed', secret = NULL, problem = 'address: ' || r.address || ' is also on line ' || dup.first
		FROM dup WHERE r.import_id = $1 AND r.line = dup.line AND r.state = 'pending'`, id); err != nil {
		return Import{}, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Import{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `UPDATE imports SET sha256 = $2, rows_total = $3 WHERE id = $1`, id, sum, rows); err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "23505" {
			// Sent before (perhaps at this very moment): that import is the answer.
			_ = tx.Rollback(ctx)
			first, err := s.importBySum(ctx, domainName, sum)
			first.Replayed = true
			return first, err
		}
		return Import{}, err
	}
	jobID, err := s.jobs.ImportAccounts(ctx, tx, ImportAccountsJob{ImportID: id, Domain: domainName, RequestedBy: req.Meta.Actor})
	if err != nil {
		return Import{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE imports SET job_id = $2 WHERE id = $1`, id, jobID); err != nil {
		return Import{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Import{}, fmt.Errorf("commands: commit: %w", err)
	}
	kept = true
	return s.Import(ctx, domainName, id)
}

// readingPrefix marks the hash of an import whose file is still being read.
const readingPrefix = "reading:"

// Import row states.
const (
	importPending = "pending"
	importApplied = "applied"
	importFailed  = "failed"
)

// credentials is what the row's secret column seals: the password or the hash, as sent.
func (r ImportRow) credentials() []byte {
	if r.Password == nil && r.PasswordHash == nil {
		return nil
	}
	b, _ := json.Marshal(struct {
		Password     *string `json:"password,omitempty"`
		PasswordHash *string `json:"password_hash,omitempty"`
	}{r.Password, r.PasswordHash})
	return b
}

// rowValidator checks rows as they are read, with what it looked up once.
type rowValidator struct {
	s         *Service
	domain    domain.Domain
	cos       map[string]bool
	minLength map[string]int
}

// check returns the row's address and, when it cannot be applied, its problem.
func (v *rowValidator) check(ctx context.Context, row ImportRow) (string, string, error) {
	if row.Problem != "" {
		return strings.ToLower(row.Address), row.Problem, nil
	}
	addr, errs := newAccountAddress(v.domain.Name, row.Address, row.LocalPart)
	if len(errs) > 0 {
		return strings.ToLower(row.Address), problemText(errs), nil
	}
	var fields []domain.FieldError
	cosKey := ""
	if row.COS != nil {
		cosKey = *row.COS
	}
	switch {
	case row.Password != nil && row.PasswordHash != nil:
		fields = append(fields, domain.FieldError{Field: "password_hash", Message: ErrPasswordAndHash.Error()})
	case row.PasswordHash != nil:
		if err := CheckHashFormat(*row.PasswordHash); err != nil {
			fields = append(fields, domain.FieldError{Field: "password_hash", Message: err.Error()})
		}
	case row.Password != nil:
		minLen, ok := v.minLength[cosKey]
		if !ok {
			n, err := v.s.passwordMinLength(ctx, addr, row.COS)
			if err != nil {
				return "", "", err
			}
			minLen, v.minLength[cosKey] = n, n
		}
		if n := len([]rune(*row.Password)); n < minLen {
			fields = append(fields, domain.FieldError{Field: "password", Message: fmt.Sprintf("must be at least %d characters", minLen)})
		} else if len(*row.Password) > 1024 {
			fields = append(fields, domain.FieldError{Field: "password", Message: "must be at most 1024 bytes"})
		}
	}
	cmd := row.command(addr, v.domain, v.s.now())
	if row.COS != nil {
		exists, ok := v.cos[cosKey]
		if !ok {
			if n, err := domain.NormalizeCOSName(cosKey); err == nil {
				c, _, err := Load[domain.COS](ctx, v.s, domain.COSStreamID(n))
				if err != nil {
					return "", "", err
				}
				exists = c.Exists()
			}
			v.cos[cosKey] = exists
		}
		cmd.COSExists = exists
	}
	// The same decision the account's creation makes, on an account that does not exist yet.
	_, err := domain.Account{}.Decide(cmd)
	var ve domain.ValidationError
	switch {
	case errors.As(err, &ve):
		fields = append(fields, ve.Errors...)
	case err != nil && !errors.Is(err, domain.ErrLimitReached):
		fields = append(fields, domain.FieldError{Field: "address", Message: err.Error()})
	}
	return addr.String(), problemText(fields), nil
}

func problemText(fields []domain.FieldError) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}

// command is the account creation a row asks for.
func (r ImportRow) command(addr domain.Address, d domain.Domain, at time.Time) domain.CreateAccount {
	return domain.CreateAccount{Address: addr, DisplayName: r.DisplayName, COS: r.COS, Status: r.Status,
		MailQuotaBytes: r.MailQuotaBytes, Attributes: r.Attributes, At: at, Domain: d}
}

const importColumns = `id, domain, sha256, format, coalesce(job_id, 0), requested_by, rows_total, created_at, finished_at,
	(SELECT count(*) FILTER (WHERE state = 'applied') FROM import_rows WHERE import_id = imports.id),
	(SELECT count(*) FILTER (WHERE state = 'failed') FROM import_rows WHERE import_id = imports.id),
	(SELECT count(*) FILTER (WHERE state = 'pending') FROM import_rows WHERE import_id = imports.id)`

func scanImport(row pgx.Row) (Import, error) {
	var i Import
	err := row.Scan(&i.ID, &i.Domain, &i.SHA256, &i.Format, &i.JobID, &i.RequestedBy, &i.Rows, &i.CreatedAt, &i.FinishedAt,
		&i.Applied, &i.Failed, &i.Pending)
	if errors.Is(err, pgx.ErrNoRows) {
		return i, ErrImportNotFound
	}
	return i, err
}

// Import returns an import of a domain with its rows counted.
func (s *Service) Import(ctx context.Context, domainName, id string) (Import, error) {
	return scanImport(s.pool.QueryRow(ctx, `SELECT `+importColumns+` FROM imports WHERE id = $1 AND domain = $2 AND job_id IS NOT NULL`, id, domainName))
}

func (s *Service) importBySum(ctx context.Context, domainName, sum string) (Import, error) {
	return scanImport(s.pool.QueryRow(ctx, `SELECT `+importColumns+` FROM imports WHERE domain = $1 AND sha256 = $2`, domainName, sum))
}

// ImportProblems returns the rows of an import that were not applied, by line, after a line
// and at most limit of them.
func (s *Service) ImportProblems(ctx context.Context, id string, after, limit int) ([]ImportProblem, error) {
	rows, err := s.pool.Query(ctx, `SELECT line, coalesce(address, ''), coalesce(problem, '') FROM import_rows
		WHERE import_id = $1 AND state = 'failed' AND line > $2 ORDER BY line LIMIT $3`, id, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ImportProblem, error) {
		var p ImportProblem
		err := r.Scan(&p.Line, &p.Address, &p.Problem)
		return p, err
	})
}

// ImportBatch is how many rows one transaction of an import applies.
const ImportBatch = 500

// RunImportOptions tune RunImport.
type RunImportOptions struct {
	// Batch is the rows per transaction (default ImportBatch).
	Batch int
	// Progress is told the rows done (applied or failed) after each batch.
	Progress func(ctx context.Context, done, total int) error
	// MaxBatches stops after that many batches (0: none), as a crash would: tests use it.
	MaxBatches int
	// Deadline, when set, ends the run after the batch during which it passed, with
	// ErrImportUnfinished if rows are still pending: the job works in slices, so that an attempt
	// whose process died is handed on soon (a job's timeout bounds how soon River's rescuer may).
	Deadline time.Time
}

// ErrImportUnfinished means RunImport stopped at its Deadline with rows still pending.
var ErrImportUnfinished = errors.New("commands: the import has rows pending")

// RunImport applies an import's pending rows in batches. Each batch appends its accounts'
// events in one statement, claims their addresses in another, and marks its rows, in one
// transaction: a run that stops anywhere leaves every row either applied with its events or
// pending without them, and the next run goes on from there. Rows that fail (an address in
// use, the account limit) are marked failed with their problem; the others still go in.
func (s *Service) RunImport(ctx context.Context, id string, o RunImportOptions) error {
	if o.Batch <= 0 {
		o.Batch = ImportBatch
	}
	var domainName, actor string
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT domain, requested_by, rows_total FROM imports WHERE id = $1`, id).
		Scan(&domainName, &actor, &total); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrImportNotFound
		}
		return err
	}
	meta := eventstore.Metadata{Actor: actor, CausationID: "import:" + id, RequestID: "import-" + id}
	progress := func() error {
		if o.Progress == nil {
			return nil
		}
		var left int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM import_rows WHERE import_id = $1 AND state = 'pending'`, id).Scan(&left); err != nil {
			return err
		}
		return o.Progress(ctx, total-left, total)
	}
	if err := progress(); err != nil {
		return err
	}
	for batches := 0; o.MaxBatches == 0 || batches < o.MaxBatches; batches++ {
		rows, err := s.pendingRows(ctx, id, o.Batch)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			break
		}
		if err := s.prepareCredentials(ctx, rows); err != nil {
			return err
		}
		for attempt := 1; ; attempt++ {
			err = s.applyImportBatch(ctx, id, domainName, meta, rows)
			if err == nil || attempt == maxAttempts || !(errors.Is(err, eventstore.ErrConcurrency) || errors.Is(err, errClaimRace)) {
				break
			}
		}
		if err != nil {
			return err
		}
		if err := progress(); err != nil {
			return err
		}
		if !o.Deadline.IsZero() && !time.Now().Before(o.Deadline) {
			var left bool
			if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM import_rows WHERE import_id = $1 AND state = 'pending')`, id).Scan(&left); err != nil {
				return err
			}
			if left {
				return ErrImportUnfinished
			}
		}
	}
	if o.MaxBatches == 0 {
		_, err := s.pool.Exec(ctx, `UPDATE imports SET finished_at = coalesce(finished_at, now()) WHERE id = $1`, id)
		return err
	}
	return nil
}

// pendingRow is a row to apply.
type pendingRow struct {
	line    int
	address domain.Address
	row     ImportRow
	secret  *string
	// passwordSecret is the sealed hash the event carries; problem, when set, fails the row.
	passwordSecret string
	problem        string
}

func (s *Service) pendingRows(ctx context.Context, id string, limit int) ([]*pendingRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT line, address, data, secret FROM import_rows
		WHERE import_id = $1 AND state = 'pending' ORDER BY line LIMIT $2`, id, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*pendingRow, error) {
		p := &pendingRow{}
		var addr string
		var data []byte
		if err := r.Scan(&p.line, &addr, &data, &p.secret); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &p.row); err != nil {
			return nil, err
		}
		a, err := domain.ParseAddress(addr)
		if err != nil {
			return nil, fmt.Errorf("import row %d: %w", p.line, err)
		}
		p.address = a
		return p, nil
	})
}

// prepareCredentials turns each row's sealed password into the sealed hash its event carries,
// before the batch's transaction: hashing takes time, and a transaction holds back readers.
func (s *Service) prepareCredentials(ctx context.Context, rows []*pendingRow) error {
	for _, p := range rows {
		if p.secret == nil {
			continue
		}
		plain, err := s.keys.Open(ctx, *p.secret)
		if err != nil {
			p.problem = "password: cannot be read any more: " + err.Error()
			continue
		}
		var cred struct {
			Password     *string `json:"password"`
			PasswordHash *string `json:"password_hash"`
		}
		err = json.Unmarshal(plain, &cred)
		clear(plain)
		if err != nil {
			return err
		}
		sealed, err := s.sealCredentials(ctx, p.address, p.row.COS, Credentials{Password: cred.Password, PasswordHash: cred.PasswordHash})
		if err != nil {
			if isValidation(err) {
				p.problem = firstMessage(err)
				continue
			}
			return err
		}
		p.passwordSecret = sealed
	}
	return nil
}

// errClaimRace means another command claimed one of a batch's addresses between the batch's
// read of the claims and its own: the batch is read and decided again.
var errClaimRace = errors.New("commands: an address of the batch was claimed meanwhile")

func (s *Service) applyImportBatch(ctx context.Context, id, domainName string, meta eventstore.Metadata, rows []*pendingRow) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// Reads first: the append below must be the transaction's first write.
	cosNames := map[string]bool{domain.DefaultCOSName: true}
	ids := []string{domain.DomainStreamID(domainName), domain.GlobalConfigStreamID}
	addrs := make([]string, len(rows))
	for i, p := range rows {
		ids = append(ids, domain.AccountStreamID(p.address))
		addrs[i] = p.address.String()
		if p.row.COS != nil {
			if n, err := domain.NormalizeCOSName(*p.row.COS); err == nil {
				cosNames[n] = true
			}
		}
	}
	for n := range cosNames {
		ids = append(ids, domain.COSStreamID(n))
	}
	streams, err := s.store.LoadManyTx(ctx, tx, ids)
	if err != nil {
		return err
	}
	reg := s.store.Registry()
	d, err := Fold[domain.Domain](reg, streams[domain.DomainStreamID(domainName)])
	if err != nil {
		return err
	}
	states := make([]string, len(rows))
	problems := make([]*string, len(rows))
	lines := make([]int32, len(rows))
	fail := func(i int, msg string) { states[i], problems[i] = importFailed, &msg }
	for i, p := range rows {
		lines[i], states[i] = int32(p.line), importApplied
		if p.problem != "" {
			fail(i, p.problem)
		}
	}
	var appends []eventstore.StreamAppend
	var claims []*pendingRow
	var cosRefs [][2]string
	if !d.Exists() || d.CheckAcceptsChanges() != nil {
		reason := fmt.Sprintf("domain %s does not exist any more", domainName)
		if d.Exists() {
			reason = d.CheckAcceptsChanges().Error()
		}
		for i := range rows {
			fail(i, reason)
		}
	} else {
		cosExists := map[string]bool{}
		for n := range cosNames {
			if n == domain.DefaultCOSName {
				continue
			}
			// As for a single creation: a COS being deleted waits for this batch, or refuses it.
			exists, err := s.assignCOS(ctx, tx, n)
			if err != nil {
				return err
			}
			cosExists[n] = exists
		}
		held := map[string]string{}
		claimRows, err := tx.Query(ctx, `SELECT address, owner FROM address_claims WHERE address = ANY($1)`, addrs)
		if err != nil {
			return err
		}
		for claimRows.Next() {
			var a, o string
			if err := claimRows.Scan(&a, &o); err != nil {
				claimRows.Close()
				return err
			}
			held[a] = o
		}
		claimRows.Close()
		if err := claimRows.Err(); err != nil {
			return err
		}
		count := 0
		if d.Limits.MaxAccounts > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, domainLockKey(d.Name)); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM address_claims WHERE domain = $1 AND kind = 'account'`, d.Name).Scan(&count); err != nil {
				return err
			}
		}
		now := s.now()
		for i, p := range rows {
			if states[i] == importFailed {
				continue
			}
			if owner, ok := held[p.address.String()]; ok {
				fail(i, (&AddressTakenError{Address: p.address.String(), Owner: owner}).Error())
				continue
			}
			events := streams[domain.AccountStreamID(p.address)]
			a, err := Fold[domain.Account](reg, events)
			if err != nil {
				return err
			}
			cmd := p.row.command(p.address, d, now)
			cmd.PasswordSecret, cmd.AccountCount = p.passwordSecret, count
			if cmd.COS != nil {
				if n, err := domain.NormalizeCOSName(*cmd.COS); err == nil {
					cmd.COSExists = cosExists[n]
				}
			}
			evs, err := a.Decide(cmd)
			if err != nil {
				fail(i, decideProblem(err))
				continue
			}
			var head *eventstore.RecordedEvent
			expected := eventstore.NoStream
			if len(events) > 0 {
				head = &events[len(events)-1]
				expected = eventstore.ExpectedVersion(head.Version)
			}
			es := make([]eventstore.Event, len(evs))
			for j, e := range evs {
				es[j] = e
				a = a.Evolve(e)
			}
			appends = append(appends, eventstore.StreamAppend{Stream: accountStream(p.address), Expected: expected, Head: head, Events: es})
			claims = append(claims, p)
			if a.COS != nil {
				cosRefs = append(cosRefs, [2]string{p.address.String(), *a.COS})
			}
			count++
		}
	}

	// The append first: it must be the transaction's first write.
	if len(appends) > 0 {
		if _, err := s.store.AppendManyTx(ctx, tx, meta, appends); err != nil {
			return err
		}
	}
	batch := &pgx.Batch{}
	claimed := int64(-1)
	if len(claims) > 0 {
		ca, cs, co := make([]string, len(claims)), make([]string, len(claims)), make([]string, len(claims))
		for i, p := range claims {
			ca[i], cs[i], co[i] = p.address.String(), domainName, domain.AccountStreamID(p.address)
		}
		// As for one account's claim: a removal of the domain that began meanwhile refuses it
		// (the batch is then decided again, and finds the domain unavailable).
		queueRemovalGuard(batch, domainName)
		batch.Queue(`INSERT INTO address_claims (address, kind, owner, domain)
			SELECT a, 'account', o, d FROM unnest($1::text[], $2::text[], $3::text[]) AS u(a, o, d)
			WHERE NOT EXISTS (SELECT 1 FROM domain_removals WHERE domain = $4 AND finished_at IS NULL)
			ON CONFLICT (address) DO NOTHING`, ca, co, cs, domainName).
			Exec(func(tag pgconn.CommandTag) error { claimed = tag.RowsAffected(); return nil })
	}
	if len(cosRefs) > 0 {
		refs, names := make([]string, len(cosRefs)), make([]string, len(cosRefs))
		for i, r := range cosRefs {
			refs[i], names[i] = r[0], r[1]
		}
		batch.Queue(`INSERT INTO cos_references (referrer, cos) SELECT * FROM unnest($1::text[], $2::text[])
			ON CONFLICT (referrer) DO UPDATE SET cos = excluded.cos`, refs, names)
	}
	batch.Queue(`UPDATE import_rows r SET state = u.state, problem = u.problem, secret = NULL
		FROM unnest($2::int[], $3::text[], $4::text[]) AS u(line, state, problem)
		WHERE r.import_id = $1 AND r.line = u.line`, id, lines, states, problems)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return err
	}
	if len(claims) > 0 && claimed != int64(len(claims)) {
		return errClaimRace
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commands: commit: %w", err)
	}
	return nil
}

// decideProblem is a refused creation's problem as a row shows it.
func decideProblem(err error) string {
	var ve domain.ValidationError
	if errors.As(err, &ve) {
		return problemText(ve.Errors)
	}
	return err.Error()
}
