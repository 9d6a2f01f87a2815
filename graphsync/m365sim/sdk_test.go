package m365sim

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	abs "github.com/microsoft/kiota-abstractions-go"
	absauth "github.com/microsoft/kiota-abstractions-go/authentication"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

type staticToken struct {
	tok   string
	hosts *absauth.AllowedHostsValidator
}

func (p *staticToken) GetAuthorizationToken(context.Context, *url.URL, map[string]interface{}) (string, error) {
	return p.tok, nil
}
func (p *staticToken) GetAllowedHostsValidator() *absauth.AllowedHostsValidator { return p.hosts }

// sdkClient builds the real msgraph-sdk-go client against the simulator
// the way FACTS.md "msgraph-sdk-go" describes.
func sdkClient(t *testing.T, s *Sim, tok string) (*msgraphsdk.GraphServiceClient, *msgraphsdk.GraphRequestAdapter) {
	t.Helper()
	hosts := absauth.NewAllowedHostsValidator([]string{"127.0.0.1"})
	auth := absauth.NewBaseBearerTokenAuthenticationProvider(&staticToken{tok: tok, hosts: &hosts})
	opts := msgraphcore.GraphClientOptions{GraphServiceVersion: "v1.0", GraphServiceLibraryVersion: "1.89.0"}
	transport := khttp.NewCustomTransportWithParentTransport(s.Transport(), msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)...)
	hc := &http.Client{Transport: transport}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, hc)
	if err != nil {
		t.Fatal(err)
	}
	adapter.SetBaseUrl(s.GraphBaseURL())
	return msgraphsdk.NewGraphServiceClient(adapter), adapter
}

func TestSDKFoldersDeltaMIMESendBatch(t *testing.T) {
	s := newSim(t, Options{Throttle: true})
	s.GenerateMailbox(testUser, 25, GenOptions{NoSamples: true, AttachmentRate: 0.3, MaxAttachment: 200 * 1024})
	tok, _ := token(t, s, testUser, allScopes)
	gc, adapter := sdkClient(t, s, tok)
	ctx := context.Background()

	// Folders.
	folders, err := gc.Me().MailFolders().Get(ctx, nil)
	if err != nil {
		t.Fatalf("mailFolders: %v", err)
	}
	var names []string
	for _, f := range folders.GetValue() {
		names = append(names, *f.GetDisplayName())
	}
	if !strings.Contains(strings.Join(names, ","), "Inbox") || !strings.Contains(strings.Join(names, ","), "Sent Items") {
		t.Fatalf("folders: %v", names)
	}

	// Delta round on the inbox, user addressed by UPN (path-escaped by the SDK).
	inbox := len(s.Messages(testUser, "inbox"))
	hdr := abs.NewRequestHeaders()
	hdr.Add("Prefer", "odata.maxpagesize=4")
	hdr.Add("Prefer", immutable)
	page, err := gc.Users().ByUserId(testUser).MailFolders().ByMailFolderId("inbox").Messages().Delta().GetAsDeltaGetResponse(ctx,
		&users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetRequestConfiguration{
			Headers: hdr,
			QueryParameters: &users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetQueryParameters{
				Select: []string{"subject", "internetMessageId", "internetMessageHeaders", "body", "isRead"}},
		})
	if err != nil {
		t.Fatalf("delta: %v", err)
	}
	seen := map[string]bool{}
	pages := 0
	var deltaLink string
	for {
		pages++
		for _, m := range page.GetValue() {
			seen[*m.GetId()] = true
			if m.GetInternetMessageId() == nil || len(m.GetInternetMessageHeaders()) == 0 {
				t.Fatalf("page item lacks selected fields")
			}
		}
		if l := page.GetOdataDeltaLink(); l != nil {
			deltaLink = *l
			break
		}
		next := page.GetOdataNextLink()
		if next == nil {
			t.Fatal("page without nextLink or deltaLink")
		}
		page, err = gc.Users().ByUserId(testUser).MailFolders().ByMailFolderId("inbox").Messages().Delta().WithUrl(*next).GetAsDeltaGetResponse(ctx,
			&users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetRequestConfiguration{Headers: hdr})
		if err != nil {
			t.Fatalf("delta page %d: %v", pages, err)
		}
	}
	if len(seen) != inbox || pages < inbox/4 {
		t.Fatalf("delta saw %d of %d messages in %d pages", len(seen), inbox, pages)
	}
	for id := range seen {
		if !strings.HasPrefix(id, "AAkALg") {
			t.Fatalf("id %s is not immutable", id)
		}
	}

	// Next round after a delivery: exactly the new message.
	raw := "From: Zoë <zoe@example.de>\r\nTo: anna@contoso.com\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <new-1@example.de>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nHallo\r\n"
	newID, err := s.DeliverMIME(testUser, "inbox", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	page, err = gc.Users().ByUserId(testUser).MailFolders().ByMailFolderId("inbox").Messages().Delta().WithUrl(deltaLink).GetAsDeltaGetResponse(ctx,
		&users.ItemMailFoldersItemMessagesDeltaRequestBuilderGetRequestConfiguration{Headers: hdr})
	if err != nil {
		t.Fatalf("next round: %v", err)
	}
	if v := page.GetValue(); len(v) != 1 || *v[0].GetId() != newID || *v[0].GetSubject() != "Grüße" {
		t.Fatalf("next round: %d items", len(v))
	}

	// MIME of the new message, byte for byte.
	mime, err := gc.Me().Messages().ByMessageId(newID).Content().Get(ctx, nil)
	if err != nil {
		t.Fatalf("$value: %v", err)
	}
	if string(mime) != raw {
		t.Fatalf("MIME differs:\n%q", mime)
	}

	// Send mail as JSON through the SDK.
	msg := models.NewMessage()
	subj := "Offer"
	msg.SetSubject(&subj)
	body := models.NewItemBody()
	ct := models.HTML_BODYTYPE
	content := "<b>Hi</b>"
	body.SetContentType(&ct)
	body.SetContent(&content)
	msg.SetBody(body)
	rcpt := models.NewRecipient()
	ea := models.NewEmailAddress()
	addr := "customer@example.com"
	ea.SetAddress(&addr)
	rcpt.SetEmailAddress(ea)
	msg.SetToRecipients([]models.Recipientable{rcpt})
	req := users.NewItemSendMailPostRequestBody()
	req.SetMessage(msg)
	if err := gc.Me().SendMail().Post(ctx, req, nil); err != nil {
		t.Fatalf("sendMail: %v", err)
	}
	sent := s.Sent(testUser)
	if len(sent) != 1 || sent[0].Subject != "Offer" || sent[0].To[0] != addr || sent[0].SavedID == "" {
		t.Fatalf("sent: %+v", sent)
	}

	// $batch of two GETs through the SDK's batch support.
	batch := msgraphcore.NewBatchRequest(adapter)
	ri1, _ := gc.Me().ToGetRequestInformation(ctx, nil)
	ri2, _ := gc.Me().MailFolders().ByMailFolderId("sentitems").ToGetRequestInformation(ctx, nil)
	it1, err := batch.AddBatchRequestStep(*ri1)
	if err != nil {
		t.Fatal(err)
	}
	it2, err := batch.AddBatchRequestStep(*ri2)
	if err != nil {
		t.Fatal(err)
	}
	before := s.Stats(testUser).BatchInner
	br, err := batch.Send(ctx, adapter)
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	for id, st := range br.GetStatusCodes() {
		if st != 200 {
			t.Fatalf("batch item %s: %d", id, st)
		}
	}
	me, err := msgraphcore.GetBatchResponseById[models.Userable](br, *it1.GetId(), models.CreateUserFromDiscriminatorValue)
	if err != nil || me == nil || me.GetUserPrincipalName() == nil || *me.GetUserPrincipalName() != testUser {
		t.Fatalf("batch /me: %v", err)
	}
	sf, err := msgraphcore.GetBatchResponseById[models.MailFolderable](br, *it2.GetId(), models.CreateMailFolderFromDiscriminatorValue)
	// (The SDK's batch body decoding drops integer properties such as
	// totalItemCount, so the test checks a string property.)
	if err != nil || sf == nil || sf.GetDisplayName() == nil || *sf.GetDisplayName() != "Sent Items" {
		t.Fatalf("batch sentitems: %v", err)
	}
	if got := s.Stats(testUser).BatchInner - before; got != 2 {
		t.Fatalf("batch inner requests counted %d, want 2", got)
	}

	// MIME send: base64 body, Message-ID kept.
	mimeMsg := "From: anna@contoso.com\r\nTo: bob@example.com\r\nSubject: MIME send\r\nMessage-ID: <odoo-42@odoo.example.com>\r\n\r\nbody\r\n"
	r := call(t, s, tok, "POST", "/me/sendMail", base64.StdEncoding.EncodeToString([]byte(mimeMsg)))
	if r.status != 202 {
		t.Fatalf("MIME send: %d %s", r.status, r.body)
	}
	sent = s.Sent(testUser)
	if last := sent[len(sent)-1]; last.InternetMessageID != "<odoo-42@odoo.example.com>" || string(last.MIME) != mimeMsg {
		t.Fatalf("MIME send kept %q", last.InternetMessageID)
	}
}

// Outlook's sensitivity reaches the SDK as the Sensitivity header of
// internetMessageHeaders (and the MIME); $select=sensitivity is refused as
// Graph v1.0 refuses it (the message type has no such property), and the
// generator marks a share of its mail private when asked.
func TestSDKSensitivityHeader(t *testing.T) {
	s := newSim(t, Options{})
	s.GenerateMailbox(testUser, 300, GenOptions{NoSamples: true, AttachmentRate: -1, PrivateRate: DemoPrivateRate})
	private := 0
	var normalID string
	for _, f := range []string{"inbox", "sentitems"} {
		for _, mi := range s.Messages(testUser, f) {
			switch mi.Sensitivity {
			case "private":
				private++
			case "normal":
				normalID = mi.ID
			default:
				t.Fatalf("generated sensitivity %q", mi.Sensitivity)
			}
		}
	}
	if private < 2 || private > 15 {
		t.Fatalf("%d of 300 generated messages private, want about 2%%", private)
	}
	if !s.SetSensitivity(testUser, normalID, "confidential") || s.SetSensitivity(testUser, normalID, "secret") {
		t.Fatal("SetSensitivity: known values only")
	}
	tok, _ := token(t, s, testUser, allScopes)
	gc, _ := sdkClient(t, s, tok)
	ctx := context.Background()
	_, err := gc.Users().ByUserId(testUser).Messages().ByMessageId(normalID).Get(ctx, &users.ItemMessagesMessageItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemMessagesMessageItemRequestBuilderGetQueryParameters{Select: []string{"subject", "sensitivity"}}})
	if err == nil || !strings.Contains(err.Error(), "sensitivity") {
		t.Fatalf("$select=sensitivity: %v, want Graph's 400", err)
	}
	m, err := gc.Users().ByUserId(testUser).Messages().ByMessageId(normalID).Get(ctx, &users.ItemMessagesMessageItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemMessagesMessageItemRequestBuilderGetQueryParameters{Select: []string{"subject", "internetMessageHeaders"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, h := range m.GetInternetMessageHeaders() {
		if strings.EqualFold(*h.GetName(), "Sensitivity") {
			got = *h.GetValue()
		}
	}
	if got != "Company-Confidential" {
		t.Fatalf("Sensitivity header %q, want Company-Confidential", got)
	}
	raw, _ := s.MIME(testUser, normalID)
	if !strings.Contains(string(raw), "\r\nSensitivity: Company-Confidential\r\n") {
		t.Fatal("MIME lacks the Sensitivity header")
	}
}

// The follow-up flag through the SDK (Graph docs resources/followupflag.md):
// PATCH flag.flagStatus, read back in the message and in $select=flag.
func TestSDKFollowupFlag(t *testing.T) {
	s := newSim(t, Options{})
	s.GenerateMailbox(testUser, 5, GenOptions{NoSamples: true, AttachmentRate: -1})
	id := s.Messages(testUser, "inbox")[0].ID
	tok, _ := token(t, s, testUser, allScopes)
	gc, _ := sdkClient(t, s, tok)
	ctx := context.Background()
	item := gc.Users().ByUserId(testUser).Messages().ByMessageId(id)
	for _, status := range []models.FollowupFlagStatus{models.FLAGGED_FOLLOWUPFLAGSTATUS, models.COMPLETE_FOLLOWUPFLAGSTATUS, models.NOTFLAGGED_FOLLOWUPFLAGSTATUS} {
		flag := models.NewFollowupFlag()
		flag.SetFlagStatus(&status)
		body := models.NewMessage()
		body.SetFlag(flag)
		if _, err := item.Patch(ctx, body, nil); err != nil {
			t.Fatal(err)
		}
		got, err := item.Get(ctx, &users.ItemMessagesMessageItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMessagesMessageItemRequestBuilderGetQueryParameters{Select: []string{"flag"}}})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetFlag() == nil || *got.GetFlag().GetFlagStatus() != status || s.Messages(testUser, "inbox")[0].FlagStatus != status.String() {
			t.Fatalf("after PATCH %s: %v / %s", status.String(), got.GetFlag(), s.Messages(testUser, "inbox")[0].FlagStatus)
		}
	}
	bad := call(t, s, tok, "PATCH", "/me/messages/"+id, `{"flag":{"flagStatus":"urgent"}}`, "Content-Type", "application/json")
	if bad.status != 400 {
		t.Fatalf("flagStatus urgent: %d, want 400", bad.status)
	}
}
