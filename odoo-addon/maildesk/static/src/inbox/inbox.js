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
        this.dialog.add(SelectCreateDialog, {
            resModel: model,
            title: _t("Log to record"),
            multiSelect: false,
            noCreate: true,
            onSelected: async (resIds) => {
                if (!resIds.length) {
                    return;
                }
                await this.call("maildesk_log_to_record", [[this.state.mailboxId], messageId, model, resIds[0]]);
                this.notification.add(_t("Logged on the record's chatter."), { type: "success" });
                await this.openMessage({ id: messageId, is_read: true });
            },
        });
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
