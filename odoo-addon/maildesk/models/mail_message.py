# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models


class MailMessage(models.Model):
    _inherit = "mail.message"

    maildesk_graph_id = fields.Char(
        "Microsoft Graph id", index="btree_not_null", readonly=True, copy=False,
        help="Immutable Graph id of the mail MailDesk logged here; used to spot duplicates.",
    )
    maildesk_conversation_id = fields.Char(
        "Outlook conversation id", index="btree_not_null", readonly=True, copy=False,
        help="Graph conversationId of the mail MailDesk brought in; replies of the same "
        "conversation land on the record holding it.",
    )
    maildesk_mailbox_id = fields.Many2one(
        "maildesk.mailbox", "MailDesk mailbox", index="btree_not_null", readonly=True, ondelete="set null",
        # users who may not see the mailbox must not meet it on a message either
        groups="maildesk.group_maildesk_admin",
    )
    maildesk_candidates = fields.Char(
        "Other possible records", readonly=True, copy=False,
        help="Set when a routing rule found open documents of several customers for this mail: it went "
        "on the contacts, and the inbox offers these records (model,id;model,id).",
    )

    @api.model_create_multi
    def create(self, vals_list):
        # Gateway ingest (maildesk.ingest._process_gateway): the messages
        # Odoo's gateway posts for the mail get MailDesk's fields as they are
        # created (not in a second UPDATE), and their ids are handed back (no
        # search by Message-Id afterwards), with the record each is on.
        stamp = self.env.context.get("maildesk_gateway_stamp")
        if not stamp:
            return super().create(vals_list)
        ours = [vals.get("message_id") == stamp["message_id"] for vals in vals_list]
        vals_list = [dict(vals, **stamp["values"]) if mine else vals for vals, mine in zip(vals_list, ours)]
        messages = super().create(vals_list)
        stamp["created"].extend(
            (message.id, vals.get("model") or False, vals.get("res_id") or False)
            for message, vals, mine in zip(messages, vals_list, ours)
            if mine
        )
        return messages
