package web

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// loginPage shows the sign-in form. Its CSRF token is bound to a random login cookie, as there
// is no session yet (login CSRF would sign a victim in as the attacker).
func (p *Panel) loginPage(w http.ResponseWriter, r *http.Request) {
	v := &View{Title: "Sign in", Flash: flashes[r.URL.Query().Get("done")], Form: map[string]string{"next": safeNext(r.URL.Query().Get("next"))}}
	p.renderLogin(w, r, http.StatusOK, v)
}

func (p *Panel) renderLogin(w http.ResponseWriter, r *http.Request, status int, v *View) {
	secret := ""
	if c, err := r.Cookie(loginCookie); err == nil && c.Value != "" {
		secret = c.Value
	} else {
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		secret = base64.RawURLEncoding.EncodeToString(b)
		setCookie(w, loginCookie, secret, time.Time{})
	}
	v.CSRF = p.csrf("login", secret)
	if err := p.render(w, status, "login", v); err != nil {
		p.log.Error("panel login page", "err", err)
	}
}

// login posts the form to POST /api/v1/auth/login. A problem whose type says "totp-required"
// (an account enrolled in TOTP) shows the code field and asks again.
func (p *Panel) login(w http.ResponseWriter, r *http.Request) {
	headers(w)
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(p.csrf("login", c.Value))) {
		p.refuse(w)
		return
	}
	email, password, code := strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password"), strings.TrimSpace(r.PostFormValue("totp_code"))
	next := safeNext(r.PostFormValue("next"))
	body := map[string]any{"email": email, "password": password}
	if code != "" {
		body["totp_code"] = code
	}
	res := p.do(r, "", http.MethodPost, "/api/v1/auth/login", body, "")
	if !res.ok() {
		v := &View{Title: "Sign in", Form: map[string]string{"email": email, "next": next}}
		pr := res.problem()
		if strings.Contains(pr.Type, "totp-required") || code != "" {
			// The password has been accepted or must be sent again with the code: keep it in
			// the (password-type) field of this no-store page rather than asking twice.
			v.Form["totp"] = "1"
			v.Form["password"] = password
		}
		v.setProblem(pr)
		if v.Form["totp"] == "1" && strings.Contains(pr.Type, "totp-required") && code == "" {
			v.Problem = nil // the field itself asks for the code
		}
		p.renderLogin(w, r, pr.Status, v)
		return
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
		SessionID string    `json:"session_id"`
	}
	if err := res.decode(&out); err != nil || out.Token == "" {
		http.Error(w, "the API's login answer could not be read", http.StatusBadGateway)
		return
	}
	setCookie(w, SessionCookie, out.Token, out.ExpiresAt)
	setCookie(w, whoCookie, url.Values{"account": {email}, "session": {out.SessionID}}.Encode(), out.ExpiresAt)
	setCookie(w, loginCookie, "", time.Unix(1, 0))
	if next == "" {
		next = "/domains"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps a redirect target on this site.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return ""
	}
	return s
}

// whoCookie names the signed-in account and its session, which sign-out ends: the API ends a
// session by account and id (DELETE /api/v1/accounts/{address}/sessions/{id}) and has no route
// that says who a token belongs to. It grants nothing: the API checks the token of the request.
const whoCookie = "mailplane_who"

// logout ends the API session (its token is refused from then on), then drops the cookies. A
// session already ended or expired is signed out all the same.
func (c *call) logout() error {
	who := url.Values{}
	if ck, err := c.r.Cookie(whoCookie); err == nil {
		who, _ = url.ParseQuery(ck.Value)
	}
	account, session := who.Get("account"), who.Get("session")
	if account == "" || session == "" {
		// Signed in before the panel kept this cookie: the session cannot be named, and ends
		// when it expires or an administrator ends it on the account page.
		c.p.log.Warn("panel sign-out: no session to end", "cookie", whoCookie)
	} else {
		res, err := c.api(http.MethodDelete, "/api/v1/accounts/"+url.PathEscape(account)+"/sessions/"+url.PathEscape(session), nil)
		if err != nil && !errors.Is(err, errSignedOut) {
			return err
		}
		if err == nil && !res.ok() && res.Status != http.StatusNotFound {
			// The cookie stays, so that signing out again can end the session.
			pr := res.problem()
			return fmt.Errorf("the session could not be ended: %d %s", pr.Status, pr.Detail)
		}
	}
	setCookie(c.w, SessionCookie, "", time.Unix(1, 0))
	setCookie(c.w, whoCookie, "", time.Unix(1, 0))
	http.Redirect(c.w, c.r, "/login?done=signed-out", http.StatusSeeOther)
	return nil
}
