"""SCIM life cycles against `edge-authz serve`, driven by a real SCIM client library.

The client is scim2-client (SyncSCIMClient over an httpx2 Client, the library's own engine) with
the models scim2-models builds from the service's discovery documents. Each step prints one JSON
line, `{"step", "ok": true, ...}`; the first failed expectation prints `{"step", "ok": false,
"error"}`, says why on standard error and exits 1.

What the edges answer is asked of each edge directly (POST {edge}/v1/{tenant}/check). A SCIM
write that removes access answers only once every edge enforces it, so the check right after it
names no epoch and is not retried: it must be denied at once. A grant made through SCIM carries
no epoch, so its check names the service's latest epoch (GET /v1/{tenant}/status) as
`at_least_epoch`.

    python lifecycle.py --scim http://127.0.0.1:8788/scim/v2/acme --token TOKEN \
        --edge http://127.0.0.1:8787 --edge http://127.0.0.1:8789

Needs a tenant whose model is the example (examples/acme.json: workspace:eng, the editor role,
the write action) and no SCIM resource named as these steps name theirs (`--prefix` changes the
names). `--token` must reach the tenant's SCIM API; `--api-token` (else `--token`) its change API,
model and status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httpx2
from scim2_client import SCIMClientException
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (
    ListResponse,
    PatchOp,
    PatchOperation,
    ResourceType,
    Schema,
    SCIMException,
    SearchRequest,
    ServiceProviderConfig,
)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Failed(Exception):
    pass


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.step = "setup"
        parts = urlsplit(args.scim.rstrip("/"))
        self.tenant = args.tenant or parts.path.rstrip("/").rsplit("/", 1)[-1]
        self.api = (args.api or f"{parts.scheme}://{parts.netloc}").rstrip("/")
        auth = {"Authorization": f"Bearer {args.token}"}
        self.http = httpx2.Client(base_url=args.scim.rstrip("/"), headers=auth, timeout=30.0)
        self.scim = SyncSCIMClient(self.http)
        api_auth = {"Authorization": f"Bearer {args.api_token or args.token}"}
        self.api_http = httpx2.Client(base_url=self.api, headers=api_auth, timeout=30.0)
        self.edge_http = httpx2.Client(timeout=30.0)
        self.p = args.prefix

    # -- reporting ------------------------------------------------------------------------------

    def emit(self, **fields: Any) -> None:
        print(json.dumps({"step": self.step, "ok": True, **fields}, default=str), flush=True)

    def expect(self, cond: bool, message: str) -> None:
        if not cond:
            raise Failed(message)

    # -- the service's other APIs and the edges ---------------------------------------------

    def changes(self, ops: list[dict[str, Any]]) -> dict[str, Any]:
        r = self.api_http.post(f"/v1/{self.tenant}/changes", json=ops)
        self.expect(r.status_code == 200, f"POST /v1/{self.tenant}/changes answered {r.status_code}: {r.text}")
        body = r.json()
        self.expect(isinstance(body.get("epoch"), int), f"the change API's answer has no epoch: {body}")
        return body

    def latest_epoch(self) -> int:
        r = self.api_http.get(f"/v1/{self.tenant}/status")
        self.expect(r.status_code == 200, f"GET /v1/{self.tenant}/status answered {r.status_code}: {r.text}")
        return int(r.json()["epoch"])

    def check(self, edge: str, subject: str, action: str, resource: str, epoch: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"subject": subject, "action": action, "resource": resource}
        if epoch is not None:
            body["context"] = {"at_least_epoch": epoch}
        r = self.edge_http.post(f"{edge.rstrip('/')}/v1/{self.tenant}/check", json=body)
        self.expect(r.status_code == 200, f"{edge} check {subject} {action} {resource}: {r.status_code} {r.text}")
        return r.json()

    def at_edges(self, subject: str, allowed: bool, *, action: str = "write", resource: str = "workspace:eng",
                 epoch: int | None = None, reason: str | None = None) -> list[dict[str, Any]]:
        """The decision at every edge, asked once each: `allowed` expected, and `reason` if given.

        With `epoch` (a grant), an edge that answers `pending` (its authority behind the epoch)
        is asked again for up to 10 s; without it (a revocation) there is one question only.
        """
        seen = []
        for edge in self.args.edge:
            d = self.check(edge, subject, action, resource, epoch)
            deadline = time.monotonic() + 10
            while epoch is not None and d.get("reason") == "pending" and time.monotonic() < deadline:
                time.sleep(0.1)
                d = self.check(edge, subject, action, resource, epoch)
            self.expect(
                d.get("allowed") is allowed,
                f"{edge}: {subject} {action} {resource} should be {'allowed' if allowed else 'denied'}"
                f"{'' if epoch is None else f' at epoch {epoch}'}, the edge answered {json.dumps(d)}",
            )
            if reason is not None:
                self.expect(d.get("reason") == reason, f"{edge}: expected reason {reason!r}, got {json.dumps(d)}")
            seen.append({"edge": edge, "allowed": d.get("allowed"), "reason": d.get("reason"), "epoch": d.get("epoch")})
        return seen

    # -- SCIM through the client --------------------------------------------------------------

    def timed(self, fn, *a, **kw):
        t0 = time.monotonic()
        out = fn(*a, **kw)
        return out, round((time.monotonic() - t0) * 1000)

    def new_user(self, name: str, **attrs: Any):
        u = self.scim.create(self.User(user_name=name, **attrs))
        self.expect(isinstance(u, self.User) and u.id, f"creating user {name} returned {u!r}")
        self.expect(u.user_name == name, f"created user {name} came back as {u.user_name!r}")
        return u

    def new_group(self, name: str, members: list[Any]):
        g = self.scim.create(self.Group(display_name=name, members=[self.member(m) for m in members]))
        self.expect(isinstance(g, self.Group) and g.id, f"creating group {name} returned {g!r}")
        return g

    def member(self, resource: Any) -> dict[str, Any]:
        kind = "Group" if isinstance(resource, self.Group) else "User"
        return {"value": resource.id, "type": kind}

    def members_of(self, group_id: str) -> set[str]:
        g = self.scim.query(self.Group, group_id)
        self.expect(isinstance(g, self.Group), f"reading group {group_id} returned {g!r}")
        return {m.value for m in (g.members or [])}

    def patch(self, model, id: str, *ops: dict[str, Any]):
        """A PatchOp of `ops` through the client (validated by scim2-models against `model`)."""
        op = PatchOp[model](operations=[PatchOperation[model](**o) for o in ops])
        return self.timed(self.scim.modify, model, id, op)

    def scim_error(self, fn, *a, **kw) -> SCIMException:
        try:
            out = fn(*a, **kw)
        except SCIMException as exc:
            return exc
        raise Failed(f"expected a SCIM error, the client returned {out!r}")

    # -- the steps ------------------------------------------------------------------------------

    def discovery(self) -> None:
        self.step = "discovery"
        self.scim.discover()
        provider = self.scim.provider
        spc = provider.config
        self.expect(isinstance(spc, ServiceProviderConfig), f"no ServiceProviderConfig: {spc!r}")
        self.expect(bool(spc.patch and spc.patch.supported), "ServiceProviderConfig: patch not supported")
        self.expect(bool(spc.etag and spc.etag.supported), "ServiceProviderConfig: etag not supported")
        self.expect(not (spc.bulk and spc.bulk.supported), "ServiceProviderConfig: bulk said supported")
        self.expect(bool(spc.filter and spc.filter.supported), "ServiceProviderConfig: filter not supported")
        types = {str(t.name): t for t in provider.resource_types}
        self.expect({"User", "Group"} <= set(types), f"ResourceTypes: {sorted(types)}")
        self.expect(types["User"].endpoint == "/Users" and str(types["User"].schema_) == USER,
                    f"the User resource type: {types['User']!r}")
        self.expect(types["Group"].endpoint == "/Groups" and str(types["Group"].schema_) == GROUP,
                    f"the Group resource type: {types['Group']!r}")
        # The /Schemas listing, asked again as a list (discover() built the models from it).
        schemas = self.scim.query(Schema)
        self.expect(isinstance(schemas, ListResponse), f"/Schemas returned {schemas!r}")
        ids = {str(s.id) for s in schemas.resources or []}
        self.expect({USER, GROUP, ENTERPRISE} <= ids, f"/Schemas lists {sorted(ids)}")
        user_schema = next(s for s in schemas.resources if str(s.id) == USER)
        user_name = next(a for a in user_schema.attributes if a.name == "userName")
        self.expect(bool(user_name.required), "the userName attribute is not required")
        rts = self.scim.query(ResourceType)
        self.expect(isinstance(rts, ListResponse) and rts.total_results == 2, f"/ResourceTypes returned {rts!r}")
        self.User = self.scim.get_resource_model("User")
        self.Group = self.scim.get_resource_model("Group")
        self.expect(self.User is not None and self.Group is not None, "discovery built no User or Group model")
        self.emit(resourceTypes=sorted(types), schemas=sorted(ids), patch=True, etag=True,
                  userModel=self.User.__name__, groupModel=self.Group.__name__)

    def users(self) -> None:
        p = self.p
        self.step = "user.create"
        self.alice = self.new_user(f"{p}alice2", display_name="Alice Two", active=True,
                                   emails=[{"value": f"{p}alice2@example.com", "type": "work", "primary": True}])
        self.expect(self.alice.active is True, f"alice2 is not active: {self.alice!r}")
        self.expect(self.alice.meta and self.alice.meta.version, "no meta.version (ETag) on the created user")
        self.emit(id=self.alice.id, version=self.alice.meta.version, location=str(self.alice.meta.location))

        self.step = "user.filter"
        found = self.scim.query(self.User, SearchRequest(filter=f'userName eq "{p}alice2"'))
        self.expect(isinstance(found, ListResponse) and found.total_results == 1,
                    f"filter userName eq found {found!r}")
        self.expect(found.resources[0].id == self.alice.id, f"the filter found {found.resources[0].id}")
        # userName is case-insensitive (RFC 7643 section 4.1.1).
        upper = self.scim.query(self.User, SearchRequest(filter=f'userName eq "{p.upper()}ALICE2"'))
        self.expect(upper.total_results == 1, f"userName eq in upper case found {upper.total_results}")
        none = self.scim.query(self.User, SearchRequest(filter=f'userName eq "{p}nobody"'))
        self.expect(none.total_results == 0 and not none.resources, f"an unknown userName found {none!r}")
        self.emit(totalResults=found.total_results)

        self.step = "user.replace"
        got = self.scim.query(self.User, self.alice.id)
        got.display_name = "Alice Replaced"
        replaced = self.scim.replace(got)  # sent with If-Match: the version read
        self.expect(replaced.display_name == "Alice Replaced", f"replace returned {replaced!r}")
        self.expect(replaced.meta.version != got.meta.version, "the version did not change on replace")
        self.expect(replaced.user_name == f"{p}alice2" and replaced.active is True, f"replace lost fields: {replaced!r}")
        # The stale version is refused (412): the client read `got` before the replacement.
        stale = self.scim_error(self.scim.replace, got)
        self.expect(stale.status == 412, f"a replace at a stale version answered {stale.status}")
        self.emit(displayName=replaced.display_name, version=replaced.meta.version, staleIfMatch=stale.status)

        self.step = "user.patch"
        patched, _ = self.patch(self.User, self.alice.id,
                                {"op": "replace", "path": "displayName", "value": "Alice Patched"})
        self.expect(patched.display_name == "Alice Patched", f"PATCH displayName returned {patched!r}")
        again = self.scim.query(self.User, self.alice.id)
        self.expect(again.display_name == "Alice Patched", f"the patched user reads back as {again!r}")
        self.expect(again.emails and again.emails[0].value == f"{p}alice2@example.com", f"emails lost: {again!r}")
        self.emit(displayName=again.display_name, version=again.meta.version)

        self.step = "group.create"
        self.dave = self.new_user(f"{p}dave2", active=True)
        self.writers = self.new_group(f"{p}writers", [self.alice])
        self.expect({m.value for m in self.writers.members or []} == {self.alice.id},
                    f"writers members: {self.writers.members!r}")
        got = self.scim.query(self.User, self.alice.id)
        groups = {g.value for g in got.groups or []}
        self.expect(self.writers.id in groups, f"alice2's groups do not list writers: {got.groups!r}")
        self.emit(id=self.writers.id, members=[self.alice.id])

        self.step = "grant"
        answer = self.changes([{"op": "add_assignment", "principal": f"group:{p}writers", "role": "editor",
                                "resource": "workspace:eng"}])
        self.expect(answer.get("revokes") is False, f"a grant answered {answer}")
        seen = self.at_edges(f"user:{p}alice2", True, epoch=answer["epoch"])
        self.emit(epoch=answer["epoch"], edges=seen)

    def deprovisioning(self) -> None:
        p, alice = self.p, f"user:{self.p}alice2"
        self.step = "deactivate"
        out, ms = self.patch(self.User, self.alice.id, {"op": "replace", "path": "active", "value": False})
        self.expect(out.active is False, f"PATCH active false returned {out!r}")
        seen = self.at_edges(alice, False, reason="suspended")
        # Every action, not only the one granted through the group.
        self.at_edges(alice, False, action="read", resource="doc:roadmap", reason="suspended")
        self.emit(ms=ms, edges=seen)

        self.step = "reactivate"
        out, ms = self.patch(self.User, self.alice.id, {"op": "replace", "path": "active", "value": True})
        self.expect(out.active is True, f"PATCH active true returned {out!r}")
        seen = self.at_edges(alice, True, epoch=self.latest_epoch())
        self.emit(ms=ms, edges=seen)

        self.step = "deactivate.no_path"
        # As Entra ID sends it: `Replace` with no path, the attributes in the value.
        out, ms = self.patch(self.User, self.alice.id, {"op": "Replace", "value": {"active": False}})
        self.expect(out.active is False, f"PATCH Replace {{active: false}} returned {out!r}")
        seen = self.at_edges(alice, False, reason="suspended")
        out, _ = self.patch(self.User, self.alice.id, {"op": "Replace", "value": {"active": True}})
        self.at_edges(alice, True, epoch=self.latest_epoch())
        self.emit(ms=ms, edges=seen)

        self.step = "member.remove"
        out, ms = self.patch(self.Group, self.writers.id,
                             {"op": "remove", "path": f'members[value eq "{self.alice.id}"]'})
        self.expect(self.members_of(self.writers.id) == set(), "alice2 is still a member of writers")
        seen = self.at_edges(alice, False)
        self.emit(ms=ms, edges=seen)

        self.step = "member.add"
        out, ms = self.patch(self.Group, self.writers.id,
                             {"op": "add", "path": "members",
                              "value": [self.member(self.alice), self.member(self.dave)]})
        self.expect(self.members_of(self.writers.id) == {self.alice.id, self.dave.id},
                    "writers does not hold alice2 and dave2")
        epoch = self.latest_epoch()
        seen = self.at_edges(alice, True, epoch=epoch)
        self.at_edges(f"user:{p}dave2", True, epoch=epoch)
        self.emit(ms=ms, edges=seen)

        self.step = "member.remove.value"
        # As Entra ID sends it: `Remove` at `members` with the members to remove as the value.
        out, ms = self.patch(self.Group, self.writers.id,
                             {"op": "Remove", "path": "members", "value": [{"value": self.alice.id}]})
        self.expect(self.members_of(self.writers.id) == {self.dave.id}, "Remove with a value: alice2 still in writers")
        seen = self.at_edges(alice, False)
        self.at_edges(f"user:{p}dave2", True)
        self.patch(self.Group, self.writers.id, {"op": "add", "path": "members", "value": [self.member(self.alice)]})
        self.at_edges(alice, True, epoch=self.latest_epoch())
        self.emit(ms=ms, edges=seen)

        self.step = "user.delete"
        # A delete at a stale version (If-Match, from the resource the client read) is refused.
        stale = self.scim.query(self.User, self.alice.id)
        self.patch(self.User, self.alice.id, {"op": "replace", "path": "title", "value": "leaving"})
        refused = self.scim_error(self.scim.delete, stale)
        self.expect(refused.status == 412, f"a DELETE at a stale version answered {refused.status}")
        self.at_edges(alice, True)
        out, ms = self.timed(self.scim.delete, self.User, self.alice.id)
        self.expect(out is None, f"DELETE returned {out!r}")
        seen = self.at_edges(alice, False, reason="suspended")
        gone = self.scim_error(self.scim.query, self.User, self.alice.id)
        self.expect(gone.status == 404, f"a deleted user reads as {gone.status}")
        self.expect(self.members_of(self.writers.id) == {self.dave.id}, "the deleted user is still listed in writers")
        # dave2 keeps his access through writers.
        self.at_edges(f"user:{p}dave2", True)
        self.emit(ms=ms, edges=seen, get=gone.status, staleIfMatch=refused.status)

        self.step = "user.recreate"
        # A user deleted and created again comes back, with none of the old access.
        back = self.new_user(f"{p}alice2", active=True)
        self.expect(back.id != self.alice.id, "the recreated user has the deleted one's id")
        d = self.at_edges(alice, False, epoch=self.latest_epoch())
        self.expect(all(x["reason"] != "suspended" for x in d), f"the recreated user is still suspended: {d}")
        self.alice = back
        self.emit(id=back.id, edges=d)

        self.step = "group.delete"
        out, ms = self.timed(self.scim.delete, self.Group, self.writers.id)
        self.expect(out is None, f"DELETE group returned {out!r}")
        seen = self.at_edges(f"user:{p}dave2", False)
        gone = self.scim_error(self.scim.query, self.Group, self.writers.id)
        self.expect(gone.status == 404, f"a deleted group reads as {gone.status}")
        dave = self.scim.query(self.User, self.dave.id)
        self.expect(not dave.groups, f"dave2 still lists groups: {dave.groups!r}")
        # The group's assignments went with it: the same name created again grants nothing.
        again = self.new_group(f"{p}writers", [self.dave])
        self.at_edges(f"user:{p}dave2", False, epoch=self.latest_epoch())
        self.scim.delete(self.Group, again.id)
        self.emit(ms=ms, edges=seen)

    def nested(self) -> None:
        p = self.p
        self.step = "nested.grant"
        carol = self.new_user(f"{p}carol2", active=True)
        sre = self.new_group(f"{p}sre", [carol])
        ops = self.new_group(f"{p}ops", [sre])
        self.expect(self.members_of(ops.id) == {sre.id}, "ops does not hold sre")
        member = (self.scim.query(self.Group, ops.id).members or [None])[0]
        self.expect(member is not None and member.type == "Group", f"the nested member: {member!r}")
        answer = self.changes([{"op": "add_assignment", "principal": f"group:{p}ops", "role": "editor",
                                "resource": "workspace:eng"}])
        seen = self.at_edges(f"user:{p}carol2", True, epoch=answer["epoch"])
        self.emit(ops=ops.id, sre=sre.id, epoch=answer["epoch"], edges=seen)

        self.step = "nested.cycle"
        # ops in sre would be a cycle: refused, and nothing changes.
        err = self.scim_error(self.patch, self.Group, sre.id, {"op": "add", "path": "members", "value": [self.member(ops)]})
        self.expect(err.status in (400, 409), f"a membership cycle answered {err.status}")
        self.expect(self.members_of(sre.id) == {carol.id}, "the refused cycle changed sre")
        self.emit(status=err.status, scimType=err.scim_type)

        self.step = "nested.remove"
        out, ms = self.patch(self.Group, ops.id, {"op": "remove", "path": f'members[value eq "{sre.id}"]'})
        self.expect(self.members_of(ops.id) == set(), "sre is still in ops")
        seen = self.at_edges(f"user:{p}carol2", False)
        self.emit(ms=ms, edges=seen)

        self.step = "nested.add"
        out, ms = self.patch(self.Group, ops.id, {"op": "add", "path": "members", "value": [self.member(sre)]})
        seen = self.at_edges(f"user:{p}carol2", True, epoch=self.latest_epoch())
        self.emit(ms=ms, edges=seen)

        self.step = "nested.replace"
        # A replacement of the parent without the nested group revokes as a PATCH does.
        got = self.scim.query(self.Group, ops.id)
        got.members = []
        out, ms = self.timed(self.scim.replace, got)
        self.expect(not out.members, f"the replaced group still has members: {out.members!r}")
        seen = self.at_edges(f"user:{p}carol2", False)
        self.emit(ms=ms, edges=seen)

    def rename(self) -> None:
        p = self.p
        self.step = "rename"
        erin = self.new_user(f"{p}erin2", active=True)
        # A name with a space: the subject is percent-encoded (`group:Team%20Blue`).
        team = self.new_group(f"{p}Team Blue", [erin])
        answer = self.changes([{"op": "add_assignment", "principal": f"group:{p}Team%20Blue", "role": "editor",
                                "resource": "workspace:eng"}])
        self.at_edges(f"user:{p}erin2", True, epoch=answer["epoch"])
        out, ms = self.patch(self.User, erin.id, {"op": "replace", "path": "userName", "value": f"{p}erin3"})
        self.expect(out.user_name == f"{p}erin3", f"the renamed user: {out!r}")
        # The old subject lost its access when the rename answered; the new one has it.
        old = self.at_edges(f"user:{p}erin2", False)
        new = self.at_edges(f"user:{p}erin3", True, epoch=self.latest_epoch())
        self.emit(ms=ms, old=old, new=new)

        self.step = "rename.group"
        out, ms = self.patch(self.Group, team.id, {"op": "replace", "path": "displayName", "value": f"{p}Team Green"})
        self.expect(out.display_name == f"{p}Team Green", f"the renamed group: {out!r}")
        # The group's assignment follows the rename (the subject is renamed everywhere).
        seen = self.at_edges(f"user:{p}erin3", True, epoch=self.latest_epoch())
        r = self.api_http.get(f"/v1/{self.tenant}/model")
        self.expect(r.status_code == 200, f"GET model: {r.status_code} {r.text}")
        held = {a["principal"] for a in r.json()["model"]["assignments"]}
        self.expect(f"group:{p}Team%20Green" in held and f"group:{p}Team%20Blue" not in held,
                    f"the assignment was not renamed: {sorted(x for x in held if p in x)}")
        found = self.scim.query(self.Group, SearchRequest(filter=f'displayName eq "{p}Team Green"'))
        self.expect(found.total_results == 1 and found.resources[0].id == team.id, f"displayName eq: {found!r}")
        self.emit(ms=ms, edges=seen)

    def paging(self) -> None:
        p = self.p
        self.step = "paging"
        made = {self.new_user(f"{p}page{i:02d}").id for i in range(1, 13)}
        everyone = self.scim.query(self.User, SearchRequest(count=1000))
        total = everyone.total_results
        self.expect(total == len(everyone.resources), f"totalResults {total} but {len(everyone.resources)} listed")
        self.expect(made <= {u.id for u in everyone.resources}, "a paging user is missing from the listing")
        seen: list[str] = []
        pages = []
        for start in range(1, total + 1, 5):
            page = self.scim.query(self.User, SearchRequest(start_index=start, count=5))
            want = min(5, total - start + 1)
            self.expect(page.total_results == total, f"startIndex={start}: totalResults {page.total_results}, want {total}")
            self.expect(page.start_index == start, f"startIndex={start}: the page says {page.start_index}")
            self.expect(page.items_per_page == want and len(page.resources or []) == want,
                        f"startIndex={start}: {page.items_per_page} per page, {len(page.resources or [])} listed, want {want}")
            seen += [u.id for u in page.resources]
            pages.append(len(page.resources))
        self.expect(len(seen) == len(set(seen)) == total, "the pages repeat or miss users")
        self.expect(set(seen) == {u.id for u in everyone.resources}, "the pages list other users than the listing")
        past = self.scim.query(self.User, SearchRequest(start_index=total + 1, count=5))
        self.expect(past.total_results == total and not past.resources, f"a page past the end: {past!r}")
        zero = self.scim.query(self.User, SearchRequest(count=0))
        self.expect(zero.total_results == total and not zero.resources, f"count=0: {zero!r}")
        self.emit(totalResults=total, pages=pages)

    def errors(self) -> None:
        p = self.p
        self.step = "error.uniqueness"
        err = self.scim_error(self.scim.create, self.User(user_name=f"{p}dave2"))
        self.expect(err.status == 409 and err.scim_type == "uniqueness",
                    f"a duplicate userName: status {err.status}, scimType {err.scim_type!r}")
        # userName is case-insensitive: another case is the same name.
        err2 = self.scim_error(self.scim.create, self.User(user_name=f"{p.upper()}DAVE2"))
        self.expect(err2.status == 409 and err2.scim_type == "uniqueness", f"upper case duplicate: {err2.status}")
        # The same through the error object the client returns when told not to raise.
        obj = self.scim.create(self.User(user_name=f"{p}dave2"), raise_scim_errors=False)
        self.expect(getattr(obj, "status", None) == 409 and obj.scim_type == "uniqueness", f"the Error object: {obj!r}")
        gerr = self.scim_error(self.scim.create, self.Group(display_name=f"{p}sre"))
        self.expect(gerr.status == 409 and gerr.scim_type == "uniqueness", f"a duplicate group: {gerr.status}")
        self.emit(status=err.status, scimType=err.scim_type, detail=err.detail)

        self.step = "error.not_found"
        missing = "0123456789abcdef0123456789abcdef"
        nf = self.scim_error(self.scim.query, self.User, missing)
        self.expect(nf.status == 404, f"GET an unknown user id: {nf.status}")
        nfg = self.scim_error(self.scim.query, self.Group, missing)
        self.expect(nfg.status == 404, f"GET an unknown group id: {nfg.status}")
        nfd = self.scim_error(self.scim.delete, self.User, missing)
        self.expect(nfd.status == 404, f"DELETE an unknown user id: {nfd.status}")
        nfp = self.scim_error(self.patch, self.User, missing, {"op": "replace", "path": "displayName", "value": "x"})
        self.expect(nfp.status == 404, f"PATCH an unknown user id: {nfp.status}")
        self.emit(status=nf.status, detail=nf.detail)

        self.step = "error.bad_member"
        bad = self.scim_error(self.scim.create, self.Group(display_name=f"{p}ghosts", members=[{"value": missing}]))
        self.expect(bad.status == 400 and bad.scim_type == "invalidValue", f"an unknown member: {bad.status} {bad.scim_type}")
        self.emit(status=bad.status, scimType=bad.scim_type)

    def run(self) -> None:
        self.discovery()
        self.users()
        self.deprovisioning()
        self.nested()
        self.rename()
        self.paging()
        self.errors()
        self.step = "done"
        self.emit()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scim", required=True, help="the tenant's SCIM base, e.g. http://127.0.0.1:8788/scim/v2/acme")
    ap.add_argument("--token", required=True, help="a bearer token for the SCIM API")
    ap.add_argument("--api-token", help="a bearer token for the change API, the model and the status "
                                        "(default: --token)")
    ap.add_argument("--edge", action="append", required=True, help="an edge's URL (repeat for each)")
    ap.add_argument("--api", help="the service's base for /v1 (default: the SCIM URL's origin)")
    ap.add_argument("--tenant", help="the tenant (default: the SCIM URL's last segment)")
    ap.add_argument("--prefix", default="", help="put before every userName and displayName")
    args = ap.parse_args()
    run = Run(args)
    try:
        run.run()
    except (Failed, SCIMException, SCIMClientException, httpx2.HTTPError, AssertionError) as exc:
        kind = type(exc).__name__
        msg = str(exc)
        if isinstance(exc, SCIMException):
            msg = f"SCIM error {exc.status} {exc.scim_type or ''}: {exc.detail}".strip()
        if isinstance(exc, SCIMClientException) and exc.__cause__ is not None:
            msg += f" ({exc.__cause__})"
        print(json.dumps({"step": run.step, "ok": False, "error": f"{kind}: {msg}"}), flush=True)
        print(f"lifecycle.py: step {run.step} failed: {kind}: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
