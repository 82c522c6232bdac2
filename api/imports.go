package api

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"mailplane/commands"
	"mailplane/domain"
	"mailplane/projections/postgres"
)

// Media types of import and export files.
const (
	mediaCSV   = "text/csv"
	mediaJSONL = "application/jsonl"
)

// importMedia maps the media types an import is accepted in to its format (application/x-ndjson
// is what many tools send for JSON lines).
var importMedia = map[string]string{mediaCSV: commands.ImportCSV, mediaJSONL: commands.ImportJSONL,
	"application/x-ndjson": commands.ImportJSONL}

// MaxImportBytes bounds an import file: the rows stream in, so this bounds the time and the
// rows table, not the memory.
const MaxImportBytes = 256 << 20

// ImportTimeout bounds an import upload (other requests have Config.RequestTimeout).
const ImportTimeout = 10 * time.Minute

func (s *Server) routeImports(r *mux.Router) {
	r.Handle("/domains/{domain}/imports", s.handle(s.startImport)).Methods(http.MethodPost)
	r.Handle("/domains/{domain}/imports/{id}", s.handle(s.getImport)).Methods(http.MethodGet)
	r.Handle("/domains/{domain}/accounts/export", s.handle(s.exportAccounts)).Methods(http.MethodGet)
}

// isImportUpload reports whether r sends an import file (its body is CSV or JSON lines, and
// larger than other bodies may be).
func isImportUpload(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v1/domains/") && strings.HasSuffix(r.URL.Path, "/imports")
}

func importFormat(contentType string) (string, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", false
	}
	f, ok := importMedia[mt]
	return f, ok
}

// importJSON is an import as the API shows it.
type importJSON struct {
	ID         string                   `json:"id"`
	Domain     string                   `json:"domain"`
	SHA256     string                   `json:"sha256"`
	Format     string                   `json:"format"`
	JobID      int64                    `json:"job_id"`
	State      string                   `json:"state"`
	Rows       int                      `json:"rows"`
	Applied    int                      `json:"applied"`
	Failed     int                      `json:"failed"`
	Pending    int                      `json:"pending"`
	Problems   []commands.ImportProblem `json:"problems"`
	NextCursor *string                  `json:"next_cursor"`
	CreatedAt  time.Time                `json:"created_at"`
	FinishedAt *time.Time               `json:"finished_at"`
}

func (s *Server) renderImport(r *http.Request, imp commands.Import, after, limit int) (importJSON, error) {
	problems, err := s.Commands.ImportProblems(r.Context(), imp.ID, after, limit+1)
	if err != nil {
		return importJSON{}, err
	}
	out := importJSON{ID: imp.ID, Domain: imp.Domain, SHA256: imp.SHA256, Format: imp.Format, JobID: imp.JobID,
		State: "applying", Rows: imp.Rows, Applied: imp.Applied, Failed: imp.Failed, Pending: imp.Pending,
		Problems: problems, CreatedAt: imp.CreatedAt, FinishedAt: imp.FinishedAt}
	if imp.FinishedAt != nil {
		out.State = "done"
	}
	if len(problems) > limit {
		out.Problems = problems[:limit]
		next := strconv.Itoa(problems[limit-1].Line)
		out.NextCursor = &next
	}
	return out, nil
}

func (s *Server) startImport(w http.ResponseWriter, r *http.Request) error {
	name, err := dkimDomain(r) // the domain's administrators
	if err != nil {
		return err
	}
	format, ok := importFormat(r.Header.Get("Content-Type"))
	if !ok {
		w.Header().Set("Accept", mediaCSV+", "+mediaJSONL)
		return errorf(http.StatusUnsupportedMediaType, "unsupported-media-type", "an import is %s or %s", mediaCSV, mediaJSONL)
	}
	req, err := s.commandRequest(r, nil)
	if err != nil {
		return err
	}
	imp, err := s.Commands.StartImport(r.Context(), req, name, format, r.Body)
	if err != nil {
		return err
	}
	view, err := s.renderImport(r, imp, 0, importProblemsPage)
	if err != nil {
		return err
	}
	job, err := s.Jobs.Lookup(r.Context(), imp.JobID)
	if err != nil {
		return err
	}
	if imp.Replayed {
		// The same file again: this is the first import and its job; nothing new started.
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(job.ID, 10))
	writeJSON(w, http.StatusAccepted, map[string]any{"job": job, "import": view})
	return nil
}

// importProblemsPage is how many bad rows one read of an import lists.
const importProblemsPage = 1000

func (s *Server) getImport(w http.ResponseWriter, r *http.Request) error {
	name, err := dkimDomain(r)
	if err != nil {
		return err
	}
	after := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		if after, err = strconv.Atoi(c); err != nil || after < 0 {
			return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad cursor",
				Fields: []FieldError{{Field: "cursor", Message: "must be a cursor this API returned"}}}
		}
	}
	imp, err := s.Commands.Import(r.Context(), name, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	view, err := s.renderImport(r, imp, after, importProblemsPage)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

// exportRow is an account as an export shows it.
type exportRow struct {
	Address        string            `json:"address"`
	DisplayName    string            `json:"display_name"`
	Status         string            `json:"status"`
	COS            string            `json:"cos"`
	MailQuotaBytes int64             `json:"mail_quota_bytes"`
	QuotaSource    string            `json:"mail_quota_source"`
	Aliases        []string          `json:"aliases"`
	Attributes     map[string]string `json:"attributes"`
	CreatedAt      time.Time         `json:"created_at"`
}

// exportPage is how many accounts one read model query of an export fetches.
const exportPage = 1000

func (s *Server) exportAccounts(w http.ResponseWriter, r *http.Request) error {
	name, err := dkimDomain(r)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "", commands.ImportCSV:
		format = commands.ImportCSV
	case commands.ImportJSONL:
	default:
		return &Error{Status: http.StatusBadRequest, Type: "validation", Detail: "bad format",
			Fields: []FieldError{{Field: "format", Message: `must be "csv" or "jsonl"`}}}
	}
	if err := s.catchUp(r, ""); err != nil {
		return err
	}
	d, err := s.Reads.DomainSettings(r.Context(), name)
	if err != nil {
		return err
	}
	g, _, err := s.Reads.GlobalConfig(r.Context())
	if err != nil {
		return err
	}
	coses, err := s.Reads.AllCOS(r.Context())
	if err != nil {
		return err
	}
	ct, ext := mediaCSV+"; charset=utf-8", "csv"
	if format == commands.ImportJSONL {
		ct, ext = mediaJSONL, "jsonl"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-accounts.%s"`, name, ext))
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	enc := json.NewEncoder(w)
	if format == commands.ImportCSV {
		_ = cw.Write([]string{"address", "display_name", "status", "cos", "mail_quota_bytes", "mail_quota_source", "aliases", "created_at"})
	}
	after := ""
	for {
		// Pages are read one after another, so an export streams in bounded memory; a change
		// committed meanwhile shows if it lands after the page being written.
		rows, err := s.Reads.ListAccounts(r.Context(), name, postgres.ListQuery{After: after, Limit: exportPage})
		if err != nil {
			// The status is sent already: cut the stream short, which the client sees.
			s.Logger.Error("export cut short", "domain", name, "err", err)
			panic(http.ErrAbortHandler)
		}
		for _, row := range rows {
			e := exportOf(g, d, coses, row.Account)
			if format == commands.ImportJSONL {
				if err := enc.Encode(e); err != nil {
					return nil // the client went away
				}
				continue
			}
			_ = cw.Write([]string{e.Address, e.DisplayName, e.Status, e.COS, strconv.FormatInt(e.MailQuotaBytes, 10),
				e.QuotaSource, strings.Join(e.Aliases, " "), e.CreatedAt.Format(time.RFC3339)})
		}
		cw.Flush()
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if len(rows) < exportPage {
			return nil
		}
		after = rows[len(rows)-1].Account.Address.String()
	}
}

func exportOf(g domain.GlobalConfig, d domain.Domain, coses map[string]domain.COS, a domain.Account) exportRow {
	name, _ := domain.EffectiveCOSName(g, d, a)
	var cos *domain.COS
	if c, ok := coses[name]; ok {
		cos = &c
	}
	eff := domain.EffectiveAccount(g, d, cos, a)
	quota, _ := eff.Values["mail_quota_bytes"].(int64)
	out := exportRow{Address: a.Address.String(), DisplayName: a.DisplayName, Status: a.Status, COS: name,
		MailQuotaBytes: quota, QuotaSource: eff.Sources["mail_quota_bytes"], Aliases: []string{},
		Attributes: a.Attributes, CreatedAt: a.CreatedAt}
	if out.Attributes == nil {
		out.Attributes = map[string]string{}
	}
	for _, al := range a.Aliases {
		out.Aliases = append(out.Aliases, al.String())
	}
	return out
}
