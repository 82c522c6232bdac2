package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// importView is an import as GET /domains/{domain}/imports/{id} shows it.
type importView struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Rows     int    `json:"rows"`
	Applied  int    `json:"applied"`
	Failed   int    `json:"failed"`
	Pending  int    `json:"pending"`
	Problems []struct {
		Line    int    `json:"line"`
		Address string `json:"address"`
		Problem string `json:"problem"`
	} `json:"problems"`
	NextCursor *string `json:"next_cursor"`
}

type importJobView struct {
	ID       int64  `json:"id"`
	State    string `json:"state"`
	Progress struct {
		Done  int `json:"done"`
		Total int `json:"total"`
	} `json:"progress"`
	Errors []string `json:"errors"`
}

// importPoll is how often account import asks how its job is doing.
var importPoll = 250 * time.Millisecond

// accountImport sends a file, follows the job with a progress bar and lists the rows that were
// not applied. Exit 1 when there were any: a script sees that the file needs fixing.
func accountImport(ctx context.Context, o *cmdline, args []string) error {
	format := o.fs.String("format", "", "csv or jsonl (default: from the file name, else csv)")
	noWait := o.fs.Bool("no-wait", false, "return once the file is accepted, without following the job")
	pos, err := o.parse(args, 2, 2)
	if err != nil {
		return err
	}
	dom, path := pos[0], pos[1]
	f := *format
	if f == "" {
		f = "csv"
		if strings.HasSuffix(path, ".jsonl") || strings.HasSuffix(path, ".ndjson") {
			f = "jsonl"
		}
	}
	ct := map[string]string{"csv": "text/csv", "jsonl": "application/jsonl"}[f]
	if ct == "" {
		return o.usageError("--format must be csv or jsonl")
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	c, err := o.client()
	if err != nil {
		return err
	}
	c.http.Timeout = 0 // a large file takes its time; the server bounds it
	r, err := c.upload(ctx, "/domains/"+seg(dom)+"/imports", ct, file)
	if err != nil {
		return err
	}
	var accepted struct {
		Job    importJobView `json:"job"`
		Import importView    `json:"import"`
	}
	if err := json.Unmarshal(r.body, &accepted); err != nil {
		return err
	}
	if r.header.Get("Idempotent-Replayed") == "true" {
		fmt.Fprintf(o.e.stderr, "this file was imported before (import %s): nothing new is done\n", accepted.Import.ID)
	}
	if *noWait {
		return o.printJSONOr(r.body, fmt.Sprintf("import %s: job %d, %d rows, %d refused\n",
			accepted.Import.ID, accepted.Job.ID, accepted.Import.Rows, accepted.Import.Failed))
	}
	bar := newProgressBar(o.e.stderr)
	start := time.Now()
	for {
		jr, err := c.do(ctx, http.MethodGet, "/jobs/"+strconv.FormatInt(accepted.Job.ID, 10), nil, nil)
		if err != nil {
			bar.clear()
			return err
		}
		var j importJobView
		if err := json.Unmarshal(jr.body, &j); err != nil {
			bar.clear()
			return err
		}
		final := j.State == "succeeded" || j.State == "failed" || j.State == "cancelled"
		bar.draw("importing into "+dom+":", "rows", j.Progress.Done, j.Progress.Total, time.Since(start), final)
		if final {
			if j.State != "succeeded" {
				return fmt.Errorf("the import job %s: %s", j.State, strings.Join(j.Errors, "; "))
			}
			break
		}
		select {
		case <-ctx.Done():
			bar.clear()
			return ctx.Err()
		case <-time.After(importPoll):
		}
	}
	// The rows that were not applied, every page of them.
	var all importView
	cursor := ""
	for {
		q := url.Values{}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		ir, err := c.do(ctx, http.MethodGet, "/domains/"+seg(dom)+"/imports/"+seg(accepted.Import.ID), q, nil)
		if err != nil {
			return err
		}
		var page importView
		if err := json.Unmarshal(ir.body, &page); err != nil {
			return err
		}
		if all.ID == "" {
			all = page
			all.Problems = nil
		}
		all.Problems = append(all.Problems, page.Problems...)
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if o.json {
		b, _ := json.MarshalIndent(all, "", "  ")
		fmt.Fprintln(o.e.stdout, string(b))
	} else {
		fmt.Fprintf(o.e.stdout, "import %s: %d rows, %d applied, %d not applied\n", all.ID, all.Rows, all.Applied, all.Failed)
		for _, p := range all.Problems {
			fmt.Fprintf(o.e.stdout, "line %d\t%s\t%s\n", p.Line, p.Address, p.Problem)
		}
	}
	if all.Failed > 0 {
		return exitCode(1)
	}
	return nil
}

// printJSONOr prints the API's JSON with --json, else the text.
func (o *cmdline) printJSONOr(body []byte, text string) error {
	if o.json {
		_, err := o.e.stdout.Write(body)
		return err
	}
	_, err := io.WriteString(o.e.stdout, text)
	return err
}

// accountExport streams the domain's accounts to standard output or a file.
func accountExport(ctx context.Context, o *cmdline, args []string) error {
	format := o.fs.String("format", "csv", "csv or jsonl")
	out := o.fs.String("out", "", "write to this file instead of standard output")
	pos, err := o.parse(args, 1, 1)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	c.http.Timeout = 0
	w := o.e.stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	n, err := c.stream(ctx, "/domains/"+seg(pos[0])+"/accounts/export", url.Values{"format": {*format}}, w)
	if err != nil {
		return err
	}
	if *out != "" {
		fmt.Fprintf(o.e.stderr, "wrote %s bytes to %s\n", thousands(int(n)), *out)
	}
	return nil
}

// upload sends a file as the request body.
func (c *client) upload(ctx context.Context, path, contentType string, body io.Reader) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1"+path, body)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return response{}, err
	}
	if resp.StatusCode >= 400 {
		return response{}, parseProblem(resp.StatusCode, b)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// stream copies a GET's body to w as it arrives.
func (c *client) stream(ctx context.Context, path string, q url.Values, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1"+path+"?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, parseProblem(resp.StatusCode, b)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("the export was cut short after %d bytes: %w", n, err)
	}
	return n, nil
}
