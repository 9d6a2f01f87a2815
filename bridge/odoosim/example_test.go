package odoosim_test

import (
	"context"
	"fmt"

	"github.com/maildesk/maildesk/bridge/odoo"
	"github.com/maildesk/maildesk/bridge/odoosim"
)

// A stand-in Odoo 19, the client pointed at it, and one message ingested onto
// the sender's contact.
func Example() {
	sim := odoosim.New(odoosim.Options{Version: 19, DB: "demo"})
	if err := sim.Start(); err != nil {
		panic(err)
	}
	defer sim.Close()
	ada := sim.AddPartner("Ada Lovelace", "ada@example.com")
	mbx := sim.CreateMailbox("mbx_3f2a", "info@corp.example")

	c, err := odoo.New(odoo.Config{URL: sim.URL(), DB: sim.DB(), Login: sim.TechLogin(), APIKey: sim.APIKey()})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	proto, _ := c.Protocol(ctx)
	res, err := c.Ingest(ctx, mbx, []odoo.IngestItem{{
		GraphID: "AAMk1", Mailbox: "mbx_3f2a", Folder: "inbox", Direction: "in",
		InternetMessageID: "<abc@example.com>", ReceivedAt: "2026-11-02T09:14:03Z",
		Subject: "Hello", From: &odoo.Address{Name: "Ada", Email: "ada@example.com"}, BodyHTML: "<p>Hi</p>",
		Options: odoo.IngestOptions{Mode: odoo.ModeLog},
	}})
	if err != nil {
		panic(err)
	}
	fmt.Println(proto, res[0].Status, res[0].Records[0].Model, res[0].Records[0].ID == ada)
	fmt.Println(len(sim.MessagesOn("res.partner", ada)), "messages on Ada")
	// Output:
	// json2 posted res.partner true
	// 2 messages on Ada
}
