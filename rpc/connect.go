package rpc

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/maildesk/maildesk/bridge"
)

// ConnectService serves mailbox.connect and mailbox.disconnect.
type ConnectService struct{ Connector *bridge.Connector }

// Connect answers mailbox.connect with {auth_url, expires_at}.
func (s *ConnectService) Connect(r *http.Request, p *bridge.ConnectParams, out *bridge.ConnectResult) error {
	v, err := s.Connector.Connect(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// Disconnect answers mailbox.disconnect with the mailbox (tokens erased).
func (s *ConnectService) Disconnect(r *http.Request, p *bridge.ConnectParams, out *bridge.MailboxView) error {
	v, err := s.Connector.Disconnect(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// OAuthService serves oauth.complete (Odoo's /maildesk/oauth/callback
// passes on what Microsoft sent back).
type OAuthService struct{ Connector *bridge.Connector }

// Complete answers oauth.complete with the connected mailbox.
func (s *OAuthService) Complete(r *http.Request, p *bridge.CompleteParams, out *bridge.MailboxView) error {
	v, err := s.Connector.Complete(r.Context(), ActorOf(r), *p)
	*out = v
	return err
}

// ConsentService serves consent.admin_url.
type ConsentService struct{ Connector *bridge.Connector }

// AdminURL answers consent.admin_url with {url}.
func (s *ConsentService) AdminURL(r *http.Request, p *bridge.AdminURLParams, out *bridge.AdminURLResult) error {
	v, err := s.Connector.AdminConsentURL(ActorOf(r), *p)
	*out = v
	return err
}

// RegisterConnect adds mailbox.connect, mailbox.disconnect, oauth.complete,
// consent.admin_url and the public /oauth/callback route.
func RegisterConnect(s *Server, c *bridge.Connector, log zerolog.Logger) error {
	if err := s.Register("mailbox", &ConnectService{Connector: c}); err != nil {
		return err
	}
	if err := s.Register("oauth", &OAuthService{Connector: c}); err != nil {
		return err
	}
	if err := s.Register("consent", &ConsentService{Connector: c}); err != nil {
		return err
	}
	h := &CallbackHandler{Connector: c, Log: log}
	s.Handle("GET /oauth/callback", h)
	s.Handle("POST /oauth/callback", h)
	return nil
}

// CallbackHandler is the sidecar's own OAuth redirect target, for setups
// where the sidecar is public and the Azure app's redirect URI points at it.
// The state authenticates the request; the answer is a small HTML page
// saying the mailbox is connected or what went wrong. It accepts Microsoft's
// query redirect (GET) and form_post (POST), and the admin consent redirect.
type CallbackHandler struct {
	Connector *bridge.Connector
	Log       zerolog.Logger
}

var callbackPage = template.Must(template.New("cb").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>MailDesk – {{.Title}}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;line-height:1.5">
<h1 style="font-size:1.4em">{{.Title}}</h1>
<p>{{.Message}}</p>
<p style="color:#666">You can close this window and go back to Odoo.</p>
</body></html>`))

func (h *CallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.page(w, http.StatusBadRequest, "Sign-in not completed", "The answer from Microsoft could not be read. Start the connection again from the mailbox in Odoo.")
		return
	}
	f := r.Form
	if f.Get("admin_consent") != "" {
		if f.Get("error") != "" {
			h.page(w, http.StatusOK, "Admin consent not granted", "Microsoft said: "+f.Get("error_description"))
			return
		}
		h.page(w, http.StatusOK, "Admin consent granted", "MailDesk may now be used by the mailboxes of tenant "+f.Get("tenant")+". Connect each mailbox from Odoo.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	v, err := h.Connector.Complete(ctx, bridge.Actor{}, bridge.CompleteParams{
		Code: f.Get("code"), State: f.Get("state"), Error: f.Get("error"), ErrorDescription: f.Get("error_description"),
	})
	if err != nil {
		e := bridge.AsError(err)
		if e.Kind == bridge.KindInternal {
			h.Log.Error().Err(e.Err).Msg("oauth callback: internal error")
		}
		status := http.StatusBadRequest
		if e.Kind == bridge.KindInternal {
			status = http.StatusInternalServerError
		}
		h.page(w, status, "Sign-in not completed", e.Message)
		return
	}
	h.page(w, http.StatusOK, "Mailbox connected", "MailDesk is connected to "+v.Email+" (signed in as "+v.ConnectedAs+"). Its mail will appear in Odoo shortly.")
}

func (h *CallbackHandler) page(w http.ResponseWriter, status int, title, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	// The URL carried a code: keep it out of Referer headers and frames.
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = callbackPage.Execute(w, map[string]string{"Title": title, "Message": msg})
}
