package web

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
)

var limitFields = []field{{"limits.domain_quota_bytes", nullInt}, {"limits.account_quota_bytes", nullInt},
	{"limits.warn_percent", nullInt}, {"limits.warn_recipient", text}, {"limits.max_accounts", integer}}

type quotaPage struct {
	Domain obj
	Quota  obj
	Items  []obj
	Next   string
}

func (c *call) quota() error { return c.quotaRender(nil, nil) }

func (c *call) quotaRender(pr *Problem, form map[string]string) error {
	v, d, err := c.domainView("Mailbox quota", "quota")
	if err != nil {
		return err
	}
	q := url.Values{"limit": {"200"}}
	if cur := c.r.URL.Query().Get("cursor"); cur != "" && c.r.Method == http.MethodGet {
		q.Set("cursor", cur)
	}
	var usage struct {
		Domain     obj     `json:"domain"`
		Items      []obj   `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := c.get(dpath(c)+"/quota?"+q.Encode(), &usage); err != nil {
		return err
	}
	page := quotaPage{Domain: d, Quota: usage.Domain, Items: usage.Items}
	if usage.NextCursor != nil {
		page.Next = "?cursor=" + url.QueryEscape(*usage.NextCursor)
	}
	v.Data = page
	if form == nil {
		form = map[string]string{}
		if lim, ok := d["limits"].(obj); ok {
			for _, k := range []string{"domain_quota_bytes", "account_quota_bytes", "warn_percent", "warn_recipient", "max_accounts"} {
				if lim[k] != nil {
					form["limits."+k] = funcs["str"].(func(any) string)(lim[k])
				}
			}
		}
	}
	v.Form = form
	status := http.StatusOK
	if pr != nil {
		v.setProblem(pr)
		status = pr.Status
	}
	return c.render(status, "domain_quota", v)
}

func (c *call) saveQuota() error {
	body, bad := c.body(limitFields, false)
	if len(bad) > 0 {
		return c.quotaRender(localProblem(bad), c.formValues())
	}
	res, err := c.api(http.MethodPatch, dpath(c), body)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.quotaRender(res.problem(), c.formValues())
	}
	return c.redirect("/domains/"+url.PathEscape(c.r.PathValue("d"))+"/quota", "saved")
}

// quotaCSV exports every account's usage, following the API's cursors.
func (c *call) quotaCSV() error {
	var rows [][]string
	cursor := ""
	for {
		q := url.Values{"limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var usage struct {
			Items      []obj   `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := c.get(dpath(c)+"/quota?"+q.Encode(), &usage); err != nil {
			return err
		}
		for _, it := range usage.Items {
			pct := ""
			if f, ok := it["percent"].(float64); ok {
				pct = strconv.FormatFloat(f, 'f', 2, 64)
			}
			s := funcs["str"].(func(any) string)
			rows = append(rows, []string{s(it["address"]), s(it["used_bytes"]), s(it["limit_bytes"]), pct, s(it["warn_percent"]), s(it["reported_at"])})
		}
		if usage.NextCursor == nil || *usage.NextCursor == "" {
			break
		}
		cursor = *usage.NextCursor
	}
	c.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	c.w.Header().Set("Content-Disposition", `attachment; filename="`+c.r.PathValue("d")+`-quota.csv"`)
	w := csv.NewWriter(c.w)
	_ = w.Write([]string{"address", "used_bytes", "limit_bytes", "percent", "warn_percent", "reported_at"})
	_ = w.WriteAll(rows)
	return w.Error()
}
