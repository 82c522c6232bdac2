package web

import (
	"io"
	"net/http"
	"net/url"
	"strings"
)

type hostsPage struct {
	Hosts []obj
	// Host is the host the certificate form was sent for; Verify what the API found.
	Host   string
	Verify obj
	// ACMEHost is the host a refused Let's Encrypt request was for.
	ACMEHost string
}

func (c *call) hosts() error { return c.hostsRender(nil, nil, hostsPage{}) }

func (c *call) hostsRender(pr *Problem, form map[string]string, page hostsPage) error {
	v, _, err := c.domainView("Virtual hosts and certificates", "hosts")
	if err != nil {
		return err
	}
	var l list
	if err := c.get(dpath(c)+"/virtual-hosts?limit=500", &l); err != nil {
		return err
	}
	page.Hosts = l.Items
	v.Data = page
	if form != nil {
		v.Form = form
	}
	status := http.StatusOK
	if pr != nil {
		v.setProblem(pr)
		status = pr.Status
	}
	return c.render(status, "hosts", v)
}

func (c *call) addHost() error {
	res, err := c.api(http.MethodPost, dpath(c)+"/virtual-hosts", obj{"host": strings.TrimSpace(c.r.PostFormValue("host"))})
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.hostsRender(res.problem(), c.formValues(), hostsPage{})
	}
	return c.redirect("/domains/"+url.PathEscape(c.r.PathValue("d"))+"/virtual-hosts", "host-added")
}

// pem takes an uploaded file when one was chosen, else the pasted text.
func (c *call) pem(name string) string {
	if c.r.MultipartForm != nil {
		if fh := c.r.MultipartForm.File[name+"_file"]; len(fh) > 0 {
			f, err := fh[0].Open()
			if err == nil {
				defer f.Close()
				b, err := io.ReadAll(io.LimitReader(f, 1<<20))
				if err == nil && len(b) > 0 {
					return string(b)
				}
			}
		}
	}
	return c.r.PostFormValue(name)
}

// acme asks Let's Encrypt (the configured ACME CA) for the host's certificate with the long
// or the short chain, and shows the issuance job.
func (c *call) acme() error {
	host := strings.TrimSpace(c.r.PostFormValue("host"))
	res, err := c.api(http.MethodPost, dpath(c)+"/virtual-hosts/"+url.PathEscape(host)+"/certificate/acme", obj{"chain": c.r.PostFormValue("chain")})
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.hostsRender(res.problem(), nil, hostsPage{ACMEHost: host})
	}
	return c.followJob(res)
}

// certificate verifies the three PEM texts (VERIFY), or installs them ("Use this certificate").
func (c *call) certificate() error {
	host := strings.TrimSpace(c.r.PostFormValue("host"))
	body := obj{"certificate": c.pem("certificate"), "ca_chain": c.pem("ca_chain"), "private_key": c.pem("private_key")}
	hp := dpath(c) + "/virtual-hosts/" + url.PathEscape(host) + "/certificate"
	form := map[string]string{"host": host, "certificate": body["certificate"].(string), "ca_chain": body["ca_chain"].(string),
		"private_key": body["private_key"].(string)}
	if c.r.PostFormValue("action") == "install" {
		res, err := c.api(http.MethodPut, hp, body)
		if err != nil {
			return err
		}
		if !res.ok() {
			pr := res.problem()
			page := hostsPage{Host: host}
			if len(pr.Problems) > 0 {
				page.Verify = obj{"valid": false, "problems": problemList(pr)}
			}
			return c.hostsRender(pr, form, page)
		}
		return c.redirect("/domains/"+url.PathEscape(c.r.PathValue("d"))+"/virtual-hosts", "cert-installed")
	}
	res, err := c.api(http.MethodPost, hp+"/verify", body)
	if err != nil {
		return err
	}
	if !res.ok() {
		return c.hostsRender(res.problem(), form, hostsPage{Host: host})
	}
	var out obj
	if err := res.decode(&out); err != nil {
		return err
	}
	return c.hostsRender(nil, form, hostsPage{Host: host, Verify: out})
}

func problemList(pr *Problem) []any {
	var out []any
	for _, p := range pr.Problems {
		out = append(out, obj{"code": p.Code, "message": p.Message})
	}
	return out
}
