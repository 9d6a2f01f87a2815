/** @odoo-module **/
// MailDesk inbox: mailboxes and folders, message list, reading pane.
// Every call goes through maildesk.mailbox model methods: the browser never
// talks to the sidecar, so the shared secret stays on the server.

import {
    Component,
    onMounted,
    onPatched,
    onWillStart,
    onWillUnmount,
    useExternalListener,
    useState,
} from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardActionServiceProps } from "@web/webclient/actions/action_service";
import { SelectCreateDialog } from "@web/views/view_dialogs/select_create_dialog";
import { ConfirmationDialog } from "@web/core/confirmation_dialog/confirmation_dialog";
import { MailDeskComposer, MailDeskSignatureDialog } from "./composer";
import { mergeSearchResults } from "./search";
import { useFileViewer } from "@web/core/file_viewer/file_viewer_hook";
import { folderOptions, groupByMailbox, shortcutFor, shortcutList, viewerFile } from "./inbox_actions";

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
            // Checked rows (message id → true): the action bar acts on them,
            // else on the open message.
            checked: {},
            // "Move to…": the open menu's folders, per mailbox (Graph's tree).
            moveMenu: false,
            folderTrees: {},
            showShortcuts: false,
            busy: false,
        });
        this.searchToken = 0;
        this.fileViewer = useFileViewer();
        this.shortcuts = shortcutList();
        useExternalListener(window, "keydown", (ev) => this.onKeydown(ev));
        // Inbox opened → first rows on screen (the Numbers of issue 14).
        this.openedAt = performance.now();
        const noteFirstPage = () => {
            if (this.openedAt && this.state.messages.length) {
                const ms = Math.round(performance.now() - this.openedAt);
                this.openedAt = 0;
                // Read by the measured tour.
                console.info(`maildesk: first page of the inbox on screen ${ms} ms after the inbox started`);
            }
        };
        onMounted(noteFirstPage);
        onPatched(noteFirstPage);
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

    /**
     * Opening: the user's mailboxes and the first page of the list shown
     * first in one call (maildesk_inbox_start); the folder pane follows.
     */
    async loadMailboxes() {
        const start = await this.orm.call(MODEL, "maildesk_inbox_start", [], {
            mailbox_id: this.state.mailboxId || false,
            address: this.state.address || false,
            folder: this.state.folder,
            query: this.state.query || false,
        });
        this.state.mailboxes = start.mailboxes;
        this.live.setMailboxes(this.state.mailboxes);
        const view = start.view || {};
        if (view.combined) {
            await this.selectCombined("inbox", view.address || "", start.page);
        } else if (view.mailbox_id) {
            await this.selectMailbox(view.mailbox_id, start.page);
        }
    }

    /** A first page read with the mailboxes: messages, or the reason there are none. */
    showPage(res) {
        this.state.messages = (res && res.messages) || [];
        this.state.checked = {};
        this.state.nextCursor = (res && res.next_cursor) || false;
        this.state.mailboxErrors = (res && res.errors) || [];
        if (res && res.error) {
            this.state.error = res.error;
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

    async selectCombined(folder, address = "", page = null) {
        this.state.address = address;
        this.state.combined = true;
        this.state.mailboxId = false;
        this.state.folders = [];
        this.state.view = "mail";
        this.state.folder = folder;
        this.state.selected = null;
        if (page) {
            this.showPage(page);
            return;
        }
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

    async selectMailbox(id, firstPage = null) {
        this.state.address = "";
        this.state.combined = false;
        this.state.mailboxId = id;
        this.state.folders = [];
        this.state.selected = null;
        // The folders (and Graph's counts) and the first page at once: the
        // list does not wait for the folder pane.
        const folders = this.call("maildesk_inbox_folders", [[id]]).then(
            (list) => {
                this.state.folders = list;
                this.noteInboxUnread(id, list);
                return true;
            },
            () => false
        );
        if (firstPage) {
            // Read with the mailboxes (opening the inbox): shown now; a
            // mailbox whose folders cannot be read shows no list, as below.
            this.state.view = "mail";
            this.showPage(firstPage);
            folders.then((ok) => {
                if (!ok && this.state.mailboxId === id) {
                    this.state.messages = [];
                }
            });
            return;
        }
        const page = this.selectFolder(this.state.folder || "inbox");
        if (!(await folders)) {
            await page;
            this.state.messages = [];
            return;
        }
        await page;
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
                this.state.nextCursor = res.next_cursor;
                this.state.mailboxErrors = res.errors || [];
            } else {
                this.showPage(res);
            }
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
        const detail = await this.call("maildesk_inbox_open", [[mailboxId], message.id], {
            show_images: showImages,
        });
        detail.id = message.id;
        detail.mailbox_id = mailboxId;
        if (detail.deleted) {
            // Deleted in Outlook meanwhile: say so where the mail was, drop the row.
            this.dropRows([message.id]);
            this.state.selected = detail;
            return;
        }
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

    // ------------------------------------------------------------------
    // Acting on mail: the checked rows, else the open message
    // ------------------------------------------------------------------

    get checkedCount() {
        return Object.keys(this.state.checked).length;
    }

    get allChecked() {
        return this.state.messages.length > 0 && this.state.messages.every((m) => this.state.checked[m.id]);
    }

    isChecked(message) {
        return Boolean(this.state.checked[message.id]);
    }

    toggleChecked(message) {
        if (this.state.checked[message.id]) {
            delete this.state.checked[message.id];
        } else {
            this.state.checked[message.id] = true;
        }
    }

    /** Select all on this page, or none when all are. */
    toggleAll() {
        const all = this.allChecked;
        this.state.checked = {};
        if (!all) {
            for (const m of this.state.messages) {
                this.state.checked[m.id] = true;
            }
        }
    }

    /** The rows an action applies to. */
    targets() {
        if (this.checkedCount) {
            return this.state.messages.filter((m) => this.state.checked[m.id]);
        }
        const open = this.state.selected;
        if (!open || open.deleted) {
            return [];
        }
        return [this.state.messages.find((m) => m.id === open.id) || { id: open.id, mailbox_id: open.mailbox_id }];
    }

    get hasTargets() {
        return this.targets().length > 0;
    }

    /** The mailbox of every target, when they share one ("Move to…" lists its folders). */
    get targetMailbox() {
        const boxes = new Set(this.targets().map((m) => this.boxOf(m)));
        return boxes.size === 1 ? [...boxes][0] : false;
    }

    /** Rows leave the list (moved, deleted); the open one gives way to the next. */
    dropRows(ids) {
        const gone = new Set(ids);
        const openId = this.state.selected && this.state.selected.id;
        const index = this.state.messages.findIndex((m) => m.id === openId);
        const next = gone.has(openId) ? this.state.messages.slice(index + 1).find((m) => !gone.has(m.id)) : null;
        this.state.messages = this.state.messages.filter((m) => !gone.has(m.id));
        for (const id of ids) {
            delete this.state.checked[id];
        }
        return next;
    }

    /**
     * delete | archive | move (to ``folder``) | read | unread | flag | unflag
     * on the targets, one call per mailbox.
     */
    async act(action, folder = false) {
        const targets = this.targets();
        if (!targets.length || this.state.busy) {
            return;
        }
        this.state.moveMenu = false;
        this.state.busy = true;
        const moving = ["delete", "archive", "move"].includes(action);
        const done = [];
        try {
            for (const [mailboxId, rows] of groupByMailbox(targets, this.state.mailboxId)) {
                const inboxRows = rows.filter((m) => (m.folder || this.state.folder) === "inbox");
                let inboxUnread = 0;
                if (moving) {
                    inboxUnread = folder === "inbox" ? 0 : inboxRows.filter((m) => !m.is_read).length;
                } else if (action === "read" || action === "unread") {
                    inboxUnread = inboxRows.filter((m) => m.is_read === (action === "unread")).length;
                }
                const res = await this.call("maildesk_inbox_act", [[mailboxId], rows.map((m) => m.id), action], {
                    folder: folder || false,
                    inbox_unread: inboxUnread,
                });
                this.live.setMailboxes([{ id: mailboxId, unread: res.unread }]);
                done.push(...rows);
            }
        } catch {
            // The error is shown above the list; what changed shows after a reload.
            await this.loadMessages(false);
            return;
        } finally {
            this.state.busy = false;
        }
        if (moving) {
            const next = this.dropRows(done.map((m) => m.id));
            const open = this.state.selected && done.some((m) => m.id === this.state.selected.id);
            const labels = { delete: _t("Deleted"), archive: _t("Archived"), move: _t("Moved") };
            this.notification.add(_t("%(action)s: %(count)s message(s).", { action: labels[action], count: done.length }), {
                type: "success",
            });
            if (open) {
                this.state.selected = null;
                if (next) {
                    await this.openMessage(next);
                }
            }
            return;
        }
        for (const row of done) {
            if (action === "read" || action === "unread") {
                row.is_read = action === "read";
            } else {
                row.flagged = action === "flag";
            }
        }
        if (this.state.selected && done.some((m) => m.id === this.state.selected.id)) {
            if (action === "flag" || action === "unflag") {
                this.state.selected.flagged = action === "flag";
            }
        }
    }

    /** "Move to…": the folder tree of the targets' mailbox, read from Graph once. */
    async toggleMoveMenu() {
        if (this.state.moveMenu) {
            this.state.moveMenu = false;
            return;
        }
        const mailboxId = this.targetMailbox;
        if (!mailboxId) {
            this.notification.add(_t("Select messages of one mailbox to move them."), { type: "warning" });
            return;
        }
        if (!this.state.folderTrees[mailboxId]) {
            this.state.folderTrees[mailboxId] = await this.call("maildesk_inbox_folder_tree", [[mailboxId]]);
        }
        this.state.moveMenu = true;
    }

    get moveOptions() {
        const mailboxId = this.targetMailbox;
        return folderOptions(mailboxId && this.state.folderTrees[mailboxId], this.state.folder);
    }

    // ------------------------------------------------------------------
    // Keyboard
    // ------------------------------------------------------------------

    onKeydown(ev) {
        if (this.state.view !== "mail") {
            return;
        }
        const action = shortcutFor(ev, { dialogOpen: Boolean(document.querySelector(".modal, .o-FileViewer")) });
        if (!action) {
            return;
        }
        ev.preventDefault();
        this.runShortcut(action);
    }

    async runShortcut(action) {
        const open = this.state.selected && !this.state.selected.deleted ? this.state.selected : null;
        switch (action) {
            case "next":
            case "previous":
                return this.step(action === "next" ? 1 : -1);
            case "reply":
            case "reply_all":
            case "forward":
                return open && this.compose(action);
            case "archive":
            case "delete":
                return this.act(action);
            case "toggle": {
                const row = open && this.state.messages.find((m) => m.id === open.id);
                return row && this.toggleChecked(row);
            }
            case "help":
                this.state.showShortcuts = !this.state.showShortcuts;
                return;
            case "escape":
                this.state.showShortcuts = false;
                this.state.moveMenu = false;
                return;
        }
    }

    /** Open the next (1) or previous (-1) message of the list. */
    async step(delta) {
        const messages = this.state.messages;
        if (!messages.length) {
            return;
        }
        const openId = this.state.selected && this.state.selected.id;
        const index = messages.findIndex((m) => m.id === openId);
        const to = index < 0 ? 0 : Math.max(0, Math.min(messages.length - 1, index + delta));
        if (to !== index) {
            await this.openMessage(messages[to]);
        }
    }

    // ------------------------------------------------------------------
    // Attachments: Odoo's file viewer, download, save to a record
    // ------------------------------------------------------------------

    get attachmentFiles() {
        const msg = this.state.selected;
        return ((msg && msg.attachments) || []).filter((a) => !a.is_inline).map(viewerFile);
    }

    preview(file) {
        // The viewer finds the file in the list by identity: one list for both.
        const files = this.attachmentFiles;
        this.fileViewer.open(files.find((f) => f.id === file.id), files);
    }

    /** Save an attachment on the record the mail is logged on, or on a picked one. */
    async saveAttachment(file, ev) {
        const choice = ev.target.value;
        ev.target.value = "";
        if (!choice) {
            return;
        }
        const { id: messageId, mailbox_id } = this.state.selected;
        const save = async (model, resId) => {
            const res = await this.call("maildesk_save_attachment", [[mailbox_id], messageId, file.id, model, resId]);
            this.notification.add(_t("%(file)s saved on %(record)s.", { file: res.name, record: res.record }), {
                type: "success",
            });
        };
        const [kind, model, resId] = choice.split(":");
        if (kind === "record") {
            await save(model, parseInt(resId));
        } else {
            this.pickRecord(model, _t("Save %s to record", file.name), (picked) => save(model, picked));
        }
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
