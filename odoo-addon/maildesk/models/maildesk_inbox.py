# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The inbox across mailboxes: combined list, unread counts, live notices.

The OWL inbox calls these through the ORM; the sidecar's notices
(``maildesk_notify``) reach the users of a mailbox over Odoo's bus.
"""
import json
import logging

from odoo import _, api, models
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError

from ..lib import mailparts

_logger = logging.getLogger(__name__)

# Bus notification type of the inbox notices (see static/src/inbox/live_service.js).
BUS_TYPE = "maildesk.inbox"
LIVE_KINDS = ("new_mail", "unread")


class MaildeskMailboxInbox(models.Model):
    _inherit = "maildesk.mailbox"

    # ------------------------------------------------------------------
    # Unread counts: one number per mailbox, counts.unread of the sidecar
    # (Graph's unreadItemCount of the inbox, as Outlook shows it).
    # ------------------------------------------------------------------

    def maildesk_inbox_folders(self):
        """folder.list of the mailbox; its Inbox shows counts.unread, read
        again from the sidecar, the number of the mailbox's badge and the
        systray (folder.list counts only the synced window of the index)."""
        sid = self._inbox_check()
        folders = self._sidecar()._call("folder.list", mailbox_id=sid) or []
        try:
            self.sudo()._refresh_from_sidecar()
        except Exception as exc:  # noqa: BLE001 - the folders are shown anyway
            _logger.info("MailDesk: refreshing %s failed: %s", self.email, exc)
        for folder in folders:
            if (folder.get("well_known") or folder.get("id")) == "inbox":
                folder["unread"] = self.unread_count
        return folders

    def maildesk_inbox_mark_read(self, message_ids, read=True, inbox_changed=0):
        """Mark read/unread (message.mark_read); ``inbox_changed`` of them were
        inbox mail whose state changed: the mailbox's count follows at once
        (the sidecar's next notice brings Graph's own count). Answers the
        mailbox's count, which the browser shows as is."""
        self.maildesk_mark_read(message_ids, read=read)
        changed = max(0, min(int(inbox_changed or 0), len(message_ids or [])))
        if changed:
            unread = max(0, self.unread_count + (-changed if read else changed))
            self.sudo().with_context(maildesk_from_sidecar=True).write({"unread_count": unread})
        return {"unread": self.unread_count}

    @api.model
    def maildesk_inbox_start(self, mailbox_id=False, address=False, folder="inbox", query=False):
        """Opening the inbox in one round trip: the user's mailboxes
        (``maildesk_inbox_mailboxes``) and the first page of the list it
        opens on — the mail with ``address``; else mailbox ``mailbox_id``;
        else all mailboxes when there are several, the only one otherwise.
        ``view`` says which ({"combined": True, "address": …} or
        {"mailbox_id": …}); ``page`` is that list's answer, or ``{"error":
        …}`` when it cannot be read. The folder pane (``folder.list``, the
        counts) is asked for after, and the first page does not wait for it."""
        mailboxes = self.maildesk_inbox_mailboxes()
        if address:
            view = {"combined": True, "address": address}
        elif mailbox_id:
            view = {"mailbox_id": int(mailbox_id)}
        elif len(mailboxes) > 1:
            view = {"combined": True}
        elif mailboxes:
            view = {"mailbox_id": mailboxes[0]["id"]}
        else:
            return {"mailboxes": mailboxes, "view": {}, "page": False}
        kwargs = {"folder": folder or "inbox", "query": query or None}
        try:
            if view.get("combined"):
                page = self.maildesk_inbox_combined(address=address or None, **kwargs)
            else:
                page = self.browse(view["mailbox_id"]).maildesk_inbox_messages(**kwargs)
        except (AccessError, MissingError, UserError, ValidationError) as exc:
            page = {"messages": [], "next_cursor": False, "error": str(exc)}
        return {"mailboxes": mailboxes, "view": view, "page": page}

    # ------------------------------------------------------------------
    # All my mail in one place
    # ------------------------------------------------------------------

    @api.model
    def maildesk_inbox_combined(self, folder="inbox", cursor=None, query=None, unread_only=False, limit=50,
                                mailbox_ids=None, address=None):
        """One list over every mailbox the user may see, newest first.

        Each mailbox's ``message.list`` page is merged by date; ``cursor``
        (opaque to the browser) keeps, per mailbox and folder, the sidecar's
        cursor and how many of that page were shown. A mailbox the sidecar
        cannot list is left out and named in ``errors``. With ``address``
        (the partner's Emails button) it lists the mail from, to or cc that
        address in every synced folder of each mailbox, received and sent.
        """
        limit = max(1, min(int(limit or 50), 200))
        mailboxes = self.search([("sidecar_id", "!=", False)])
        if mailbox_ids:
            mailboxes = mailboxes.filtered(lambda m: m.id in set(mailbox_ids))
        errors = []
        if cursor:
            try:
                state = json.loads(cursor)
                limit = int(state["limit"])
                sources = {tuple(k.split("|", 1)): (str(v[0] or ""), int(v[1])) for k, v in state["boxes"].items()}
                sources = {(int(k[0]), k[1]): v for k, v in sources.items()}
            except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                raise ValidationError(_("The inbox cursor is not valid; start again without one.")) from None
        elif address:
            sources = {}
            for mailbox in mailboxes:
                try:
                    folders = mailbox._sidecar()._call("folder.list", mailbox_id=mailbox.sidecar_id) or []
                except (UserError, ValidationError) as exc:
                    errors.append({"mailbox_id": mailbox.id, "email": mailbox.email, "error": str(exc)})
                    continue
                for f in folders:
                    sources[(mailbox.id, f.get("well_known") or f.get("id"))] = ("", 0)
        else:
            sources = {(m.id, folder or "inbox"): ("", 0) for m in mailboxes}
        by_id = {m.id: m for m in mailboxes}
        buffers = []
        for (mailbox_id, source_folder), (sidecar_cursor, skip) in sources.items():
            mailbox = by_id.get(mailbox_id)
            if not mailbox:
                continue
            params = {"mailbox_id": mailbox.sidecar_id, "folder": source_folder, "limit": limit}
            if sidecar_cursor:
                params["cursor"] = sidecar_cursor
            if query:
                params["query"] = query
            if unread_only:
                params["unread_only"] = True
            if address:
                params["address"] = address
            try:
                result = mailbox._sidecar()._call("message.list", **params) or {}
            except (UserError, ValidationError) as exc:
                if not any(e["mailbox_id"] == mailbox.id for e in errors):
                    errors.append({"mailbox_id": mailbox.id, "email": mailbox.email, "error": str(exc)})
                continue
            messages = (result.get("messages") or [])[skip:]
            for message in messages:
                message["mailbox_id"] = mailbox.id
                message["mailbox_email"] = mailbox.email
                message["folder"] = source_folder
                message["_at"] = str(mailparts.parse_datetime(message.get("received_at")) or "")
            buffers.append({"key": "%s|%s" % (mailbox.id, source_folder), "order": (mailbox.id, source_folder),
                            "messages": messages, "next": result.get("next_cursor") or "",
                            "cursor": sidecar_cursor, "skip": skip, "taken": 0})
        page = []
        while len(page) < limit:
            live = [b for b in buffers if b["taken"] < len(b["messages"])]
            # A mailbox whose page is used up but has more may hold mail newer
            # than the others' rest: stop here, the next page fetches it.
            if not live or any(b["taken"] >= len(b["messages"]) and b["next"] for b in buffers):
                break
            best = max(live, key=lambda b: (b["messages"][b["taken"]]["_at"], b["order"]))
            page.append(best["messages"][best["taken"]])
            best["taken"] += 1
        state = {}
        for b in buffers:
            if b["taken"] < len(b["messages"]):
                state[b["key"]] = [b["cursor"], b["skip"] + b["taken"]]
            elif b["next"]:
                state[b["key"]] = [b["next"], 0]
        for message in page:
            message.pop("_at", None)
        linked = self.browse()._linked_records([m.get("internet_message_id") for m in page])
        for message in page:
            message["linked"] = linked.get(message.get("internet_message_id"), [])
        return {
            "messages": page,
            "next_cursor": json.dumps({"limit": limit, "boxes": state}) if state else False,
            "errors": errors,
        }

    # ------------------------------------------------------------------
    # Live: the sidecar's inbox notices, pushed on Odoo's bus
    # ------------------------------------------------------------------

    def _maildesk_handle_notice(self, notice):
        if not isinstance(notice, dict) or notice.get("kind") not in LIVE_KINDS:
            return super()._maildesk_handle_notice(notice)
        mailbox = self.browse()
        if notice.get("mailbox"):
            mailbox = self.with_context(active_test=False).search([("sidecar_id", "=", notice["mailbox"])], limit=1)
        if not mailbox:
            mailbox = self.exists()[:1]
        if not mailbox:
            return {"status": "ignored", "error": "unknown mailbox"}
        try:
            count = max(0, int(notice.get("count") or 0))
            unread = int(notice["unread"]) if notice.get("unread") is not None else None
        except (TypeError, ValueError):
            return {"status": "error", "error": "count and unread must be numbers"}
        if unread is not None and unread >= 0 and unread != mailbox.unread_count:
            mailbox.with_context(maildesk_from_sidecar=True).write({"unread_count": unread})
        users = mailbox._inbox_audience()
        payload = {
            "kind": notice["kind"],
            "mailbox_id": mailbox.id,
            "email": mailbox.email,
            "folder": notice.get("folder") or "inbox",
            "count": count,
            "unread": mailbox.unread_count,
        }
        if hasattr(users, "_bus_send"):
            users._bus_send(BUS_TYPE, payload)
        else:  # 17.0: no res.users._bus_send
            self.env["bus.bus"]._sendmany([(user.partner_id, BUS_TYPE, payload) for user in users])
        return {"status": "done", "users": len(users)}

    def _inbox_audience(self):
        """The internal users who see this mailbox in their inbox: its owner,
        main user and assigned users, and the MailDesk administrators."""
        self.ensure_one()
        Users = self.env["res.users"].sudo()
        groups_field = "group_ids" if "group_ids" in Users._fields else "groups_id"  # 19.0 renamed it
        admins = Users.search([(groups_field, "in", self.env.ref("maildesk.group_maildesk_admin").id)])
        users = (self.owner_id | self.main_user_id | self.user_ids).sudo() | admins
        return users.filtered(lambda u: u.active and not u.share and u.has_group("maildesk.group_maildesk_user"))
