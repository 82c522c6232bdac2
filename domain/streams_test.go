package domain

import "testing"

func TestStreamInDomain(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		stream string
		want   bool
	}{
		{"domain-example.com", true},
		{"account-ann@example.com", true},
		{"list-team@example.com", true},
		{"resource-room@example.com", true},
		{"vhost-example.com/mail.example.com", true},
		{"gal-example.com", true},
		{"domain-sub.example.com", false},
		{"account-ann@sub.example.com", false},
		{"account-ann@notexample.com", false},
		{"vhost-example.community/x", false},
		{"domain-example.com.evil", false},
		{"cos-default", false},
		{"config-global", false},
		{"example.com", false},
	} {
		if got := StreamInDomain(c.stream, "example.com"); got != c.want {
			t.Errorf("StreamInDomain(%q, example.com) = %v, want %v", c.stream, got, c.want)
		}
	}
	if StreamInDomain("domain-", "") {
		t.Error("no domain holds streams")
	}
}
