/** @odoo-module **/
// MailDesk inbox: mailboxes and folders, message list, reading pane.
// Every call goes through maildesk.mailbox model methods: the browser never
// talks to the sidecar, so the shared secret stays on the server.

import { Component, onWillStart, onWillUnmount, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardActionServiceProps } from "@web/webclient/actions/action_service";
import { SelectCreateDialog } from "@web/views/view_dialogs/select_create_dialog";
import { ConfirmationDialog } from "@web/core/confirmation_dialog/confirmation_dialog";
import { MailDeskComposer, MailDeskSignatureDialog } from "./composer";
import { mergeSearchResults } from "./search";

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
        // Unread counts and the sidecar's notices (new mail while open).
        this.live = useService("maildesk_live");
        this.liveState = useState(this.live.state);
        const stopListening = this.live.onNotice((notice) => this.onNotice(notice));
        onWillUnmount(stopListening);
        const params = (this.props.action && this.props.action.params) || {};
        this.state = useState({
            mailboxes: [],
            mailboxId: params.mailbox_id || false,
            // All mailboxes in one list (the default with several mailboxes).
            combined: false,
            // The mail with one contact, all folders (the partner's Emails button).
            address: params.address || "",
            addressName: params.partner_name || params.address || "",
            // Folders of the mailboxes of messages opened in the combined list.
            folderCache: {},
            // Mailboxes the combined list could not read: [{mailbox_id, email, error}]
            mailboxErrors: [],
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
            // Microsoft 365's search (message.search) after the index's answer.
            searching: false,
            graphCursor: false,
        });
        this.searchToken = 0;
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
        this.live.setMailboxes(this.state.mailboxes);
        if (this.state.address) {
            await this.selectCombined("inbox", this.state.address);
        } else if (this.state.mailboxId) {
            await this.selectMailbox(this.state.mailboxId);
        } else if (this.state.mailboxes.length > 1) {
            await this.selectCombined("inbox");
        } else if (this.state.mailboxes.length) {
            await this.selectMailbox(this.state.mailboxes[0].id);
        }
    }

    /** Unread mail of a mailbox's inbox (counts.unread), kept live. */
    unreadOf(mailboxId) {
        return this.liveState.unread[mailboxId] || 0;
    }

    /** The mailbox a message belongs to (the combined list mixes them). */
    boxOf(message) {
        return (message && message.mailbox_id) || this.state.mailboxId;
    }

    /** Folders offered by "Move to folder…" for the open message. */
    get moveFolders() {
        if (!this.state.combined) {
            return this.state.folders;
        }
        return (this.state.selected && this.state.folderCache[this.state.selected.mailbox_id]) || [];
    }

    async selectCombined(folder, address = "") {
        this.state.address = address;
        this.state.combined = true;
        this.state.mailboxId = false;
        this.state.folders = [];
        this.state.view = "mail";
        this.state.folder = folder;
        this.state.selected = null;
        await this.loadMessages(false);
    }

    /** A notice of the sidecar: new mail shows at the top of the open list. */
    async onNotice(notice) {
        if (notice.kind !== "new_mail" || !notice.count || this.state.view !== "mail" || this.state.address) {
            return;
        }
        if ((notice.folder || "inbox") !== this.state.folder) {
            return;
        }
        if (this.state.combined ? !this.state.mailboxes.some((m) => m.id === notice.mailbox_id)
            : notice.mailbox_id !== this.state.mailboxId) {
            return;
        }
        const res = await this.fetchPage(false);
        const known = new Set(this.state.messages.map((m) => m.id));
        const fresh = res.messages.filter((m) => !known.has(m.id));
        if (fresh.length) {
            this.state.messages = [...fresh, ...this.state.messages];
        }
    }

    get currentMailbox() {
        return this.state.mailboxes.find((m) => m.id === this.state.mailboxId);
    }

    async selectMailbox(id) {
        this.state.address = "";
        this.state.combined = false;
        this.state.mailboxId = id;
        this.state.folders = [];
        this.state.selected = null;
        try {
            this.state.folders = await this.call("maildesk_inbox_folders", [[id]]);
            this.noteInboxUnread(id, this.state.folders);
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

    /** The inbox count folder.list gave (counts.unread) is the mailbox's. */
    noteInboxUnread(mailboxId, folders) {
        const inbox = folders.find((f) => (f.well_known || f.id) === "inbox");
        if (inbox) {
            this.live.setMailboxes([{ id: mailboxId, unread: inbox.unread }]);
        }
    }

    /** One page of the open list: one mailbox's folder, or all mailboxes'. */
    async fetchPage(more) {
        if (this.state.folder === "drafts") {
            // Drafts are read from Microsoft 365 (saved here or in Outlook).
            return this.call("maildesk_search", [], {
                folder: "drafts",
                mailbox_ids: this.state.combined ? false : [this.state.mailboxId],
                cursor: more ? this.state.nextCursor : false,
            });
        }
        const kwargs = {
            folder: this.state.folder,
            cursor: more ? this.state.nextCursor : false,
            query: this.state.query || false,
            unread_only: this.state.unreadOnly,
        };
        if (this.state.combined) {
            if (this.state.address) {
                kwargs.address = this.state.address;
            }
            return this.call("maildesk_inbox_combined", [], kwargs);
        }
        return this.call("maildesk_inbox_messages", [[this.state.mailboxId]], kwargs);
    }

    async loadMessages(more) {
        if (!this.state.mailboxId && !this.state.combined) {
            return;
        }
        this.state.loading = true;
        try {
            const res = await this.fetchPage(more);
            if (more) {
                // New mail shown meanwhile shifts the pages: skip what is listed.
                const known = new Set(this.state.messages.map((m) => m.id));
                this.state.messages = [...this.state.messages, ...res.messages.filter((m) => !known.has(m.id))];
            } else {
                this.state.messages = res.messages;
            }
            this.state.nextCursor = res.next_cursor;
            this.state.mailboxErrors = res.errors || [];
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
            this.search();
        }
    }

    /** The index answers first; Microsoft 365's search is merged in after. */
    async search() {
        const token = ++this.searchToken;
        this.state.graphCursor = false;
        await this.loadMessages(false);
        if (!this.state.query || this.state.folder === "drafts") {
            return;
        }
        await this.searchGraph(token, false);
    }

    async searchGraph(token, more) {
        this.state.searching = true;
        try {
            const res = await this.call("maildesk_search", [], {
                query: this.state.query,
                mailbox_ids: this.state.combined ? false : [this.state.mailboxId],
                cursor: more ? this.state.graphCursor : false,
            });
            if (token !== this.searchToken) {
                return; // a newer search is under way
            }
            this.state.messages = mergeSearchResults(this.state.messages, res.messages);
            this.state.graphCursor = res.next_cursor;
        } finally {
            if (token === this.searchToken) {
                this.state.searching = false;
            }
        }
    }

    toggleUnreadOnly() {
        this.state.unreadOnly = !this.state.unreadOnly;
        this.loadMessages(false);
    }

    async openMessage(message, showImages = false) {
        const mailboxId = this.boxOf(message);
        if (message.is_draft) {
            await this.openComposer(mailboxId, "draft", message.id);
            return;
        }
        const detail = await this.call("maildesk_inbox_message", [[mailboxId], message.id], {
            show_images: showImages,
        });
        detail.id = message.id;
        detail.mailbox_id = mailboxId;
        await this.prepareLog();
        if (this.state.combined && !this.state.folderCache[mailboxId]) {
            this.state.folderCache[mailboxId] = await this.call("maildesk_inbox_folders", [[mailboxId]]);
        }
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
        const mailboxId = this.boxOf(message);
        const row = this.state.messages.find((m) => m.id === message.id);
        const changed = row && row.is_read !== read && (row.folder || this.state.folder) === "inbox" ? 1 : 0;
        // The badges follow at once (Odoo's count, adjusted); the sidecar's
        // next notice brings Graph's count.
        const res = await this.call("maildesk_inbox_mark_read", [[mailboxId], [message.id]], {
            read,
            inbox_changed: changed,
        });
        this.live.setMailboxes([{ id: mailboxId, unread: res.unread }]);
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
        const msg = this.state.selected;
        await this.openMessage({ id: msg.id, mailbox_id: msg.mailbox_id, is_read: true }, true);
    }

    async trustSender() {
        const msg = this.state.selected;
        await this.call("maildesk_trust_sender", [msg.sender_email]);
        await this.openMessage({ id: msg.id, mailbox_id: msg.mailbox_id, is_read: true }, false);
        this.notification.add(_t("Images from this sender will be shown."), { type: "success" });
    }

    async compose(mode) {
        const msg = this.state.selected;
        await this.openComposer(msg.mailbox_id, mode, msg.id);
    }

    /** New mail, from the open mailbox when the user may send as it. */
    async newMail() {
        await this.openComposer(this.state.mailboxId, "new", false);
    }

    /** Open the composer (components/composer.js) on prepared values. */
    async openComposer(mailboxId, mode, messageId) {
        const senders = await this.call("maildesk_compose_senders", []);
        if (!senders.length) {
            this.notification.add(_t("You may not send from any of your mailboxes."), { type: "warning" });
            return;
        }
        if (mode === "new" && !senders.some((s) => s.id === mailboxId)) {
            mailboxId = senders[0].id;
        }
        const values =
            mode === "draft"
                ? await this.call("maildesk_draft_open", [[mailboxId], messageId])
                : await this.call("maildesk_compose_prepare", [[mailboxId]], { mode, message_id: messageId });
        this.dialog.add(MailDeskComposer, {
            values,
            senders,
            onDone: () => {
                if (this.state.folder === "drafts") {
                    this.loadMessages(false);
                }
            },
        });
    }

    /** The open mailbox's signature (its owner, or a MailDesk administrator). */
    async editSignature() {
        const senders = await this.call("maildesk_compose_senders", []);
        const mine = senders.find((s) => s.id === this.state.mailboxId);
        const mailbox = { id: this.state.mailboxId, email: this.currentMailbox.email, signature: mine ? mine.signature : "" };
        this.dialog.add(MailDeskSignatureDialog, {
            mailbox,
            onSaved: () => this.notification.add(_t("Signature saved."), { type: "success" }),
        });
    }

    async move(ev) {
        const folder = ev.target.value;
        if (!folder) {
            return;
        }
        const { id, mailbox_id } = this.state.selected;
        await this.call("maildesk_move", [[mailbox_id], [id], folder]);
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
        const { id: messageId, mailbox_id } = this.state.selected;
        this.pickRecord(model, _t("Log to record"), async (resId) => {
            await this.call("maildesk_log_to_record", [[mailbox_id], messageId, model, resId]);
            this.notification.add(_t("Logged on the record's chatter."), { type: "success" });
            await this.openMessage({ id: messageId, mailbox_id, is_read: true });
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
        const { id: messageId, mailbox_id } = this.state.selected;
        const res = await this.call("maildesk_move_to_record", [[mailbox_id], messageId, model, resId]);
        const message = res.logged
            ? _t("Logged on %s.", res.name)
            : _t("Moved to %s.", res.name);
        this.notification.add(message, { type: "success" });
        await this.openMessage({ id: messageId, mailbox_id, is_read: true });
    }

    /** "Don't log this conversation" / "Never log mail with <address>". */
    async exclude(kind) {
        const msg = this.state.selected;
        const value = kind === "conversation" ? msg.conversation_id : msg.correspondent && msg.correspondent.email;
        const label =
            kind === "conversation" ? msg.subject : (msg.correspondent && msg.correspondent.name) || value;
        const res = await this.call("maildesk_exclude", [[msg.mailbox_id], kind, value, label]);
        const done = async (removed) => {
            const what = kind === "conversation" ? _t("This conversation") : _t("Mail with %s", value);
            let text = _t("%s will not be logged any more.", what);
            if (removed) {
                text += " " + _t("%s logged mails were removed.", removed);
            }
            this.notification.add(text, { type: "success" });
            await this.openMessage({ id: msg.id, mailbox_id: msg.mailbox_id, is_read: true });
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
                const removed = await this.call("maildesk_remove_excluded_logged", [[msg.mailbox_id], res.id]);
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

    /** A folder's name in the list of the mail with a contact. */
    folderLabel(folder) {
        const names = {
            inbox: _t("Inbox"),
            sentitems: _t("Sent"),
            drafts: _t("Drafts"),
            archive: _t("Archive"),
            deleteditems: _t("Deleted"),
            junkemail: _t("Junk"),
        };
        return names[folder] || _t("Folder");
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
