/** @odoo-module **/
// 17.0 only (build.py adds it and points imports of @web/core/user here):
// 17.0 has no @web/core/user; this answers hasGroup over RPC as 17.0's own
// user service does.
import { jsonrpc } from "@web/core/network/rpc_service";

const groups = new Map();

export const user = {
    hasGroup(group) {
        if (!groups.has(group)) {
            groups.set(
                group,
                jsonrpc("/web/dataset/call_kw/res.users/has_group", {
                    model: "res.users",
                    method: "has_group",
                    args: [group],
                    kwargs: {},
                })
            );
        }
        return groups.get(group);
    },
};
