/** @odoo-module **/
// MailDesk composer: new mail, reply, reply all, forward and drafts, from
// any mailbox the user may send as. The draft lives in the mailbox's Drafts
// folder in Microsoft 365 (saved through the sidecar), so Outlook sees it
// and a draft made in Outlook opens here.
//
// The body is edited inside a frame that runs no script (sandbox without
// allow-scripts) and whose CSP loads no remote image: a quoted original or a
// signature can hold hostile HTML, and it stays inert while it is edited.
// The HTML is kept as written (a signature's logo is sent), and the server
// sanitises it again before it leaves.

import { Component, onMounted, useRef, useState } from "@odoo/owl";
import { Dialog } from "@web/core/dialog/dialog";
import { _t } from "@web/core/l10n/translation";
import { useService } from "@web/core/utils/hooks";

const MODEL = "maildesk.mailbox";

/** The editing frame's document: no script, no remote loads. */
export function buildEditorDoc(bodyHtml) {
    const csp = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; font-src data:";
    return (
        `<!DOCTYPE html><html><head><meta charset="utf-8">` +
        `<meta http-equiv="Content-Security-Policy" content="${csp}">` +
        `<style>body{font-family:system-ui,sans-serif;font-size:14px;margin:8px;min-height:200px;outline:none}` +
        `img{max-width:100%}</style></head><body contenteditable="true">${bodyHtml || ""}</body></html>`
    );
}

/** "Anna <a@x.com>, b@y.com" → ["Anna <a@x.com>", "b@y.com"] (for display checks). */
export function splitRecipients(value) {
    return (value || "")
        .split(/[,;]/)
        .map((s) => s.trim())
        .filter(Boolean);
}

export function readAsBase64(file) {
    return new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(String(reader.result).split(",")[1] || "");
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(file);
    });
}

export class MailDeskComposer extends Component {
    static template = "maildesk.Composer";
    static components = { Dialog };
    static props = {
        values: Object,
        senders: Array,
        close: Function,
        onDone: { type: Function, optional: true },
    };

    setup() {
        this.orm = useService("orm");
        this.notification = useService("notification");
        this.frame = useRef("editor");
        const v = this.props.values;
        this.state = useState({
            mailboxId: v.mailbox_id,
            to: v.to || "",
            cc: v.cc || "",
            bcc: v.bcc || "",
            showCc: Boolean(v.cc || v.bcc),
            subject: v.subject || "",
            attachments: [...(v.attachments || [])],
            newAttachments: [],
            draftId: v.draft_id || false,
            messageId: v.message_id || "",
            savedAt: "",
            busy: false,
            error: "",
        });
        this.initialBody = v.body_html || "";
        this.srcdoc = buildEditorDoc(this.initialBody);
        onMounted(() => this.frame.el && this.frame.el.setAttribute("srcdoc", this.srcdoc));
    }

    get title() {
        const titles = {
            new: _t("New mail"),
            reply: _t("Reply"),
            reply_all: _t("Reply all"),
            forward: _t("Forward"),
            draft: _t("Draft"),
        };
        return titles[this.props.values.mode] || _t("Mail");
    }

    /** Only a new mail may change its sender: a reply keeps its mailbox. */
    get canChooseSender() {
        return this.props.values.mode === "new" && this.props.senders.length > 1;
    }

    onSenderChange(ev) {
        const next = parseInt(ev.target.value);
        const before = this.props.senders.find((s) => s.id === this.state.mailboxId);
        const after = this.props.senders.find((s) => s.id === next);
        this.state.mailboxId = next;
        // Swap the signature when the body still holds the previous one.
        const body = this.bodyElement();
        const sig = body && body.querySelector(".maildesk_signature");
        if (sig && before && after) {
            sig.innerHTML = after.signature ? `<br>-- <br>${after.signature}` : "";
        }
    }

    bodyElement() {
        const el = this.frame.el;
        const doc = el && el.contentDocument;
        return doc && doc.body;
    }

    bodyHtml() {
        const body = this.bodyElement();
        return body ? body.innerHTML : this.initialBody;
    }

    values() {
        return {
            to: this.state.to,
            cc: this.state.cc,
            bcc: this.state.bcc,
            subject: this.state.subject,
            body_html: this.bodyHtml(),
            in_reply_to: this.props.values.in_reply_to || "",
            references: this.props.values.references || "",
            message_id: this.state.messageId,
            draft_id: this.state.draftId,
            attachments: this.state.attachments,
            new_attachments: this.state.newAttachments,
        };
    }

    async run(method) {
        this.state.busy = true;
        this.state.error = "";
        try {
            return await this.orm.call(MODEL, method, [[this.state.mailboxId], this.values()]);
        } catch (error) {
            this.state.error = (error.data && error.data.message) || error.message || String(error);
            throw error;
        } finally {
            this.state.busy = false;
        }
    }

    async saveDraft() {
        const res = await this.run("maildesk_draft_save");
        this.state.draftId = res.draft_id;
        this.state.messageId = res.message_id;
        this.state.attachments = res.attachments;
        this.state.newAttachments = [];
        this.state.savedAt = new Date().toLocaleTimeString();
        this.notification.add(_t("Draft saved in Drafts."), { type: "success" });
        if (this.props.onDone) {
            this.props.onDone("saved", res);
        }
    }

    async send() {
        const res = await this.run("maildesk_draft_send");
        this.notification.add(_t("Sent."), { type: "success" });
        if (this.props.onDone) {
            this.props.onDone("sent", res);
        }
        this.props.close();
    }

    async onFiles(ev) {
        for (const file of ev.target.files || []) {
            this.state.newAttachments.push({
                name: file.name,
                content_type: file.type || "application/octet-stream",
                data_base64: await readAsBase64(file),
                size: file.size,
            });
        }
        ev.target.value = "";
    }

    removeAttachment(att) {
        this.state.attachments = this.state.attachments.filter((a) => a !== att);
    }

    removeNew(att) {
        this.state.newAttachments = this.state.newAttachments.filter((a) => a !== att);
    }

    formatSize(size) {
        if (!size) {
            return "";
        }
        return size > 1048576 ? `${(size / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(size / 1024))} KB`;
    }
}

/** The owner's signature editor (same inert frame as the composer). */
export class MailDeskSignatureDialog extends Component {
    static template = "maildesk.SignatureDialog";
    static components = { Dialog };
    static props = { mailbox: Object, close: Function, onSaved: { type: Function, optional: true } };

    setup() {
        this.orm = useService("orm");
        this.frame = useRef("editor");
        this.state = useState({ error: "" });
        onMounted(() => this.frame.el && this.frame.el.setAttribute("srcdoc", buildEditorDoc(this.props.mailbox.signature || "")));
    }

    async save() {
        const doc = this.frame.el && this.frame.el.contentDocument;
        const html = doc && doc.body ? doc.body.innerHTML : "";
        try {
            const stored = await this.orm.call(MODEL, "maildesk_set_signature", [[this.props.mailbox.id], html]);
            if (this.props.onSaved) {
                this.props.onSaved(stored);
            }
            this.props.close();
        } catch (error) {
            this.state.error = (error.data && error.data.message) || error.message || String(error);
        }
    }
}
