package graphsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// MSALError is a refusal from the Microsoft identity platform's token
// endpoint, decoded from its JSON body. It never holds the request (whose
// form carries the client secret, the code or the refresh token).
type MSALError struct {
	Status   int    // HTTP status
	Code     string // error: invalid_grant, interaction_required, invalid_client ...
	SubError string // suberror: consent_required, bad_token ...
	AADSTS   string // first of error_codes, e.g. AADSTS50173
	Reason   string // first line of error_description
}

func (e *MSALError) Error() string {
	s := fmt.Sprintf("Microsoft identity platform refused (%d %s", e.Status, e.Code)
	if e.AADSTS != "" {
		s += " " + e.AADSTS
	}
	s += ")"
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// reauthCodes are AADSTS codes that only an interactive sign-in cures:
// revoked grant (50173), refresh token expired by inactivity (700082), consent
// missing or withdrawn (65001), MFA/strong auth needed (50076, 50079),
// expired or bad refresh token (70043, 700084, 70008), password expired (50055).
var reauthCodes = map[string]bool{
	"AADSTS50173": true, "AADSTS700082": true, "AADSTS65001": true, "AADSTS50076": true,
	"AADSTS50079": true, "AADSTS70043": true, "AADSTS700084": true, "AADSTS70008": true,
	"AADSTS50055": true,
}

// needsSignIn reports whether only the owner signing in again helps
// (FACTS.md: treat invalid_grant and interaction_required as "sign in again").
func (e *MSALError) needsSignIn() bool {
	switch e.Code {
	case "invalid_grant", "interaction_required", "consent_required", "login_required":
		return true
	}
	return reauthCodes[e.AADSTS]
}

// parseMSALError decodes a token-endpoint refusal from an MSAL error; nil
// when err is not one (network failure, timeout, cache trouble).
func parseMSALError(err error) *MSALError {
	var ce msalerrors.CallErr
	if !errors.As(err, &ce) {
		var pce *msalerrors.CallErr
		if !errors.As(err, &pce) || pce == nil {
			return nil
		}
		ce = *pce
	}
	out := &MSALError{}
	if ce.Resp != nil {
		out.Status = ce.Resp.StatusCode
	}
	// MSAL puts the body after the status line of its message.
	msg := ""
	if ce.Err != nil {
		msg = ce.Err.Error()
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
		SubError    string `json:"suberror"`
	}
	if i := strings.Index(msg, "{"); i >= 0 {
		_ = json.Unmarshal([]byte(msg[i:]), &body)
	}
	out.Code = body.Error
	if out.Code == "" {
		out.Code = "http_" + strconv.Itoa(out.Status)
	}
	out.SubError = body.SubError
	if len(body.Codes) > 0 {
		out.AADSTS = "AADSTS" + strconv.Itoa(body.Codes[0])
	}
	out.Reason = firstLine(body.Description)
	if out.AADSTS == "" && strings.HasPrefix(out.Reason, "AADSTS") {
		if i := strings.IndexByte(out.Reason, ':'); i > 0 {
			out.AADSTS = out.Reason[:i]
		}
	}
	return out
}

// firstLine keeps Microsoft's explanation and drops the trace and
// correlation ids that follow it, capped so a mailbox error stays readable.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// AADSTSOf returns the first AADSTS code named in a Microsoft error
// description ("AADSTS65001: The user or administrator has not consented…").
func AADSTSOf(desc string) string {
	i := strings.Index(desc, "AADSTS")
	if i < 0 {
		return ""
	}
	j := i + len("AADSTS")
	for j < len(desc) && desc[j] >= '0' && desc[j] <= '9' {
		j++
	}
	if j == i+len("AADSTS") {
		return ""
	}
	return desc[i:j]
}
