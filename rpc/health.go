package rpc

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/maildesk/maildesk/bridge"
)

func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// serveReadyz runs every check with a short deadline: 200 when all pass,
// 503 otherwise. It names failing components but says nothing secret.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := struct {
		Status     string            `json:"status"`
		Components map[string]string `json:"components"`
	}{Status: "ok", Components: map[string]string{}}
	status := http.StatusOK
	for _, c := range s.checks {
		if err := c.fn(ctx); err != nil {
			out.Components[c.name] = err.Error()
			out.Status = "unavailable"
			status = http.StatusServiceUnavailable
			continue
		}
		out.Components[c.name] = "ok"
	}
	if s.downCheck != nil {
		for name, cs := range s.downCheck(ctx) {
			if cs.Status != bridge.StatusDown {
				continue
			}
			msg := "down"
			if cs.Detail != "" {
				msg += ": " + cs.Detail
			}
			out.Components[name] = msg
			out.Status = "unavailable"
			status = http.StatusServiceUnavailable
		}
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// serveBackup streams a consistent copy of the database (bbolt read
// transaction) to an authenticated caller: `maildesk backup` uses it while
// serve holds the file lock. Secrets stay sealed in the copy.
func (s *Server) serveBackup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="maildesk-backup.db"`)
	w.Header().Set("Cache-Control", "no-store")
	n, err := s.deps.System.Backup(w)
	if err != nil && n == 0 {
		// Nothing sent yet (PostgreSQL: the sidecar streams no backup).
		w.Header().Del("Content-Disposition")
		http.Error(w, err.Error(), http.StatusNotImplemented)
		return
	}
	if err != nil {
		// Headers are gone: abort the connection so the client sees a
		// broken transfer instead of a short file.
		s.log.Error().Err(err).Int64("bytes", n).Msg("backup stream failed")
		panic(http.ErrAbortHandler)
	}
	s.log.Info().Int64("bytes", n).Msg("backup streamed")
}
