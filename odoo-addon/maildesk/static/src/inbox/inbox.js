/** @odoo-module **/
// MailDesk inbox: mailboxes and folders, message list, reading pane.
// Every call goes through maildesk.mailbox model methods: the browser never
// talks to the sidecar, so the shared secret stays on the server.

import { Component, onWillStart, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardActionServiceProps } from "@web/webclient/actions/action_service";
import { SelectCreateDialog } from "@web/views/view_dialogs/select_create_dialog";
import { ConfirmationDialog } from "@web/core/confirmation_dialog/confirmation_dialog";

const MODEL = "maildesk.mailbox";

// Mail HTML is untrusted: it goes into a sandboxed iframe (no scripts, no
// same-origin) and a CSP that only lets remote images in once allowed.
export function buildFrameDoc(bodyHtml, allowRemote) {
    const img = allowRemote ? "data: cid: https: http:" : "data: cid: 'self'";
    const csp = `default-src 'none'; img-src ${img}; style-src 'unsafe-inline'; font-src data:`;
    return (
        `<!DOCTYPE html><html><head><meta charset="utf-8">` +
        `<meta http-equiv="Content-Security-Policy" content="${csp}">` +
        `<base target="_blank">` +
        `<style>body{font-family:system-ui,sans-serif;font-size:14px;margin:8px;word-wrap:break-word}` +
        `img{max-width:100%;height:auto}img[data-maildesk-src]{display:none}</style></head><body>${bodyHtml || ""}</body></html>`
    );
}

export class MailDeskInbox extends Component {
    static template = "maildesk.Inbox";
    static props = { ...standardActionServiceProps };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.notification = useService("notification");
        this.dialog = useService("dialog");
        const params = (this.props.action && this.props.action.params) || {};
        this.state = useState({
            mailboxes: [],
            mailboxId: params.mailbox_id || false,
            folders: [],
            folder: "inbox",
            messages: [],
            nextCursor: false,
            query: params.query || "",
            unreadOnly: false,
            selected: null,
            loading: false,
            error: "",
            loggable: [],
            logModel: "",
            // "mail": the folder's messages; "excluded": the mailbox's exclusions
            view: "mail",
            exclusions: [],
        });
        onWillStart(() => this.loadMailboxes());
    }

    async call(method, args = [], kwargs = {}) {
        try {
            this.state.error = "";
            return await this.orm.call(MODEL, method, args, kwargs);
        } catch (error) {
            this.state.error = (error.data && error.data.message) || error.message || String(error);
            throw error;
        }
    }

    async loadMailboxes() {
        this.state.mailboxes = await this.orm.call(MODEL, "maildesk_inbox_mailboxes", []);
        if (!this.state.mailboxId && this.state.mailboxes.length) {
            this.state.mailboxId = this.state.mailboxes[0].id;
        }
        if (this.state.mailboxId) {
            await this.selectMailbox(this.state.mailboxId);
        }
    }

    get currentMailbox() {
        return this.state.mailboxes.find((m) => m.id === this.state.mailboxId);
    }

    async selectMailbox(id) {
        this.state.mailboxId = id;
        this.state.folders = [];
        this.state.selected = null;
        try {
            this.state.folders = await this.call("maildesk_inbox_folders", [[id]]);
        } catch {
            this.state.messages = [];
            return;
        }
        await this.selectFolder(this.state.folder || "inbox");
    }

    async selectFolder(folder) {
        this.state.view = "mail";
        this.state.folder = folder;
        this.state.selected = null;
        await this.loadMessages(false);
    }

    async loadMessages(more) {
        if (!this.state.mailboxId) {
            return;
        }
        this.state.loading = true;
        try {
            const res = await this.call("maildesk_inbox_messages", [[this.state.mailboxId]], {
                folder: this.state.folder,
                cursor: more ? this.state.nextCursor : false,
                query: this.state.query || false,
                unread_only: this.state.unreadOnly,
            });
            this.state.messages = more ? [...this.state.messages, ...res.messages] : res.messages;
            this.state.nextCursor = res.next_cursor;
        } catch {
            if (!more) {
                this.state.messages = [];
            }
        } finally {
            this.state.loading = false;
        }
    }

    onSearchKeydown(ev) {
        if (ev.key === "Enter") {
            this.state.query = ev.target.value;
            this.loadMessages(false);
        }
    }

    toggleUnreadOnly() {
        this.state.unreadOnly = !this.state.unreadOnly;
        this.loadMessages(false);
    }

    async openMessage(message, showImages = false) {
        const detail = await this.call("maildesk_inbox_message", [[this.state.mailboxId], message.id], {
            show_images: showImages,
        });
        detail.id = message.id;
        await this.prepareLog();
        detail.frameDoc = buildFrameDoc(detail.body_html, showImages || detail.sender_trusted);
        this.state.selected = detail;
        const row = this.state.messages.find((m) => m.id === message.id);
        if (row) {
            // The pane just asked Odoo: the list row shows the same place.
            row.linked = detail.linked;
            row.placement = detail.placement;
        }
        if (!message.is_read) {
            await this.setRead(message, true);
        }
    }

    async setRead(message, read) {
        await this.call("maildesk_mark_read", [[this.state.mailboxId], [message.id]], { read });
        const row = this.state.messages.find((m) => m.id === message.id);
        if (row) {
            row.is_read = read;
        }
    }

    async toggleRead() {
        const row = this.state.messages.find((m) => m.id === this.state.selected.id);
        if (row) {
            await this.setRead(row, !row.is_read);
        }
    }

    async showImagesOnce() {
        await this.openMessage({ id: this.state.selected.id, is_read: true }, true);
    }

    async trustSender() {
        await this.call("maildesk_trust_sender", [this.state.selected.sender_email]);
        await this.openMessage({ id: this.state.selected.id, is_read: true }, false);
        this.notification.add(_t("Images from this sender will be shown."), { type: "success" });
    }

    async compose(mode) {
        const action = await this.call("maildesk_compose_action", [[this.state.mailboxId], this.state.selected.id], {
            mode,
        });
        await this.action.doAction(action);
    }

    async move(ev) {
        const folder = ev.target.value;
        if (!folder) {
            return;
        }
        const id = this.state.selected.id;
        await this.call("maildesk_move", [[this.state.mailboxId], [id], folder]);
        this.state.messages = this.state.messages.filter((m) => m.id !== id);
        this.state.selected = null;
        this.notification.add(_t("Message moved."), { type: "success" });
    }

    async prepareLog() {
        if (!this.state.loggable.length) {
            this.state.loggable = await this.call("maildesk_loggable_models", []);
        }
    }

    logToRecord(ev) {
        const model = ev.target.value;
        ev.target.value = "";
        if (!model) {
            return;
        }
        const messageId = this.state.selected.id;
        this.pickRecord(model, _t("Log to record"), async (resId) => {
            await this.call("maildesk_log_to_record", [[this.state.mailboxId], messageId, model, resId]);
            this.notification.add(_t("Logged on the record's chatter."), { type: "success" });
            await this.openMessage({ id: messageId, is_read: true });
        });
    }

    /** Pick a record of ``model`` (the picker of Log to record). */
    pickRecord(model, title, onPicked) {
        this.dialog.add(SelectCreateDialog, {
            resModel: model,
            title,
            multiSelect: false,
            noCreate: true,
            onSelected: async (resIds) => {
                if (resIds.length) {
                    await onPicked(resIds[0]);
                }
            },
        });
    }

    moveToPicked(ev) {
        const model = ev.target.value;
        ev.target.value = "";
        if (!model) {
            return;
        }
        this.pickRecord(model, _t("Move to record"), (resId) => this.moveToRecord(model, resId));
    }

    /** Move this mailbox's logged copies of the open mail onto one record. */
    async moveToRecord(model, resId) {
        const messageId = this.state.selected.id;
        const res = await this.call("maildesk_move_to_record", [[this.state.mailboxId], messageId, model, resId]);
        const message = res.logged
            ? _t("Logged on %s.", res.name)
            : _t("Moved to %s.", res.name);
        this.notification.add(message, { type: "success" });
        await this.openMessage({ id: messageId, is_read: true });
    }

    /** "Don't log this conversation" / "Never log mail with <address>". */
    async exclude(kind) {
        const msg = this.state.selected;
        const value = kind === "conversation" ? msg.conversation_id : msg.correspondent && msg.correspondent.email;
        const label =
            kind === "conversation" ? msg.subject : (msg.correspondent && msg.correspondent.name) || value;
        const res = await this.call("maildesk_exclude", [[this.state.mailboxId], kind, value, label]);
        const done = async (removed) => {
            const what = kind === "conversation" ? _t("This conversation") : _t("Mail with %s", value);
            let text = _t("%s will not be logged any more.", what);
            if (removed) {
                text += " " + _t("%s logged mails were removed.", removed);
            }
            this.notification.add(text, { type: "success" });
            await this.openMessage({ id: msg.id, is_read: true });
        };
        if (!res.logged) {
            await done(0);
            return;
        }
        this.dialog.add(ConfirmationDialog, {
            title: _t("Not logged any more"),
            body: _t("Also remove the %s mails already logged?", res.logged),
            confirmLabel: _t("Remove them"),
            cancelLabel: _t("Keep them"),
            confirm: async () => {
                const removed = await this.call("maildesk_remove_excluded_logged", [[this.state.mailboxId], res.id]);
                await done(removed);
            },
            cancel: async () => {
                await done(0);
            },
        });
    }

    async showExcluded() {
        this.state.view = "excluded";
        this.state.selected = null;
        this.state.exclusions = await this.call("maildesk_exclusions", [[this.state.mailboxId]]);
    }

    async removeExclusion(exclusion) {
        await this.call("maildesk_remove_exclusion", [[this.state.mailboxId], exclusion.id]);
        this.state.exclusions = this.state.exclusions.filter((e) => e.id !== exclusion.id);
        this.notification.add(_t("%s is logged again from now on.", exclusion.label), { type: "success" });
    }

    openRecord(link) {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: link.model,
            res_id: link.res_id,
            views: [[false, "form"]],
        });
    }

    formatAddress(entry) {
        if (!entry) {
            return "";
        }
        return entry.name ? `${entry.name} <${entry.email}>` : entry.email || "";
    }

    formatAddresses(list) {
        return (list || []).map((e) => this.formatAddress(e)).join(", ");
    }

    formatDate(value) {
        if (!value) {
            return "";
        }
        const date = new Date(value);
        return isNaN(date) ? value : date.toLocaleString();
    }
}

registry.category("actions").add("maildesk.inbox", MailDeskInbox);
