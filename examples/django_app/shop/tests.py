"""Run by TenancyTestRunner: the test database comes from the template with the extension and the
seeded tenants (acme.test, globex.test), and shop_order is registered, so RLS is on in the tests."""

import json
import os

from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings
from tenancy.django import tenant

from .models import Order


class ShopTests(TransactionTestCase):
    def test_rls_is_on_in_the_test_database(self):
        with connection.cursor() as cur:
            cur.execute(
                "select relrowsecurity, relforcerowsecurity from pg_class where oid = 'shop_order'::regclass"
            )
            self.assertEqual(cur.fetchone(), (True, True))
            cur.execute("select count(*) from tenancy.scoped_tables where relid = 'shop_order'::regclass")
            self.assertEqual(cur.fetchone(), (1,))
            # Django's own index on tenant_id is the only one led by it
            cur.execute(
                "select count(*) from pg_index i join pg_attribute a on a.attrelid = i.indrelid"
                " and a.attnum = i.indkey[0]"
                " where i.indrelid = 'shop_order'::regclass and a.attname = 'tenant_id'"
            )
            self.assertEqual(cur.fetchone(), (1,))

    def post(self, host, body):
        return self.client.post("/orders", json.dumps(body), content_type="application/json", HTTP_HOST=host)

    def test_two_hosts_are_isolated(self):
        self.assertEqual(self.post("acme.test", {"title": "a1"}).status_code, 201)
        self.assertEqual(self.post("globex.test", {"title": "g1"}).status_code, 201)
        self.assertEqual(self.client.get("/orders", HTTP_HOST="acme.test").json()["titles"], ["a1"])
        self.assertEqual(self.client.get("/orders", HTTP_HOST="globex.test").json()["titles"], ["g1"])
        # no context outside a request: zero rows
        with connection.cursor() as cur:
            cur.execute("select count(*) from shop_order")
            self.assertEqual(cur.fetchone(), (0,))

    def test_cross_tenant_write_is_refused(self):
        globex = self.client.get("/orders", HTTP_HOST="globex.test").json()["tenant"]
        with self.assertRaises(Exception) as ctx:
            self.post("acme.test", {"title": "evil", "tenant_id": globex})
        self.assertIn("row-level security", str(ctx.exception))
        self.assertEqual(self.client.get("/orders", HTTP_HOST="globex.test").json()["titles"], [])

    def test_unknown_host_is_404(self):
        self.assertEqual(self.client.get("/orders", HTTP_HOST="nobody.test").status_code, 404)

    def test_suspended_tenant_is_403(self):
        self.assertEqual(self.client.get("/orders", HTTP_HOST="dormant.test").status_code, 403)

    def test_streaming(self):
        self.post("acme.test", {"title": "s1"})
        self.post("acme.test", {"title": "s2"})
        self.post("globex.test", {"title": "other"})
        for url in ("/orders/stream", "/orders/stream-buffered"):
            response = self.client.get(url, HTTP_HOST="acme.test")
            self.assertEqual(b"".join(response.streaming_content), b"s1\ns2\n", url)

    def test_identity_token_source(self):
        token, forged = os.environ.get("SHOP_TOKEN_ACME"), os.environ.get("SHOP_TOKEN_FORGED")
        if not token:
            self.skipTest("no token given (tests/py/test_django_example.py signs them)")
        acme = self.client.get("/orders", HTTP_HOST="acme.test").json()["tenant"]
        with override_settings(TENANCY={"SOURCE": "jwt"}):
            ok = self.client.get("/orders", HTTP_HOST="any.test", HTTP_AUTHORIZATION=f"Bearer {token}")
            self.assertEqual((ok.status_code, ok.json()["tenant"]), (200, acme))
            for auth in (f"Bearer {forged}", "", "Bearer x.y.z"):
                response = self.client.get("/orders", HTTP_HOST="acme.test", HTTP_AUTHORIZATION=auth)
                self.assertEqual(response.status_code, 403, auth)


class InOneTransactionTests(TestCase):
    """A TestCase runs each test in a transaction: no request may leave its context to the test body."""

    def current(self):
        with connection.cursor() as cur:
            cur.execute("select tenancy.current_tenant(), (select count(*) from shop_order)")
            return cur.fetchone()

    def test_no_context_leaks_out_of_a_request(self):
        response = self.client.post("/orders", json.dumps({"title": "a1"}), content_type="application/json",
                                    HTTP_HOST="acme.test")  # fmt: skip
        self.assertEqual(response.status_code, 201)
        self.assertEqual(self.current(), (None, 0))
        self.assertEqual(self.client.get("/orders", HTTP_HOST="acme.test").json()["titles"], ["a1"])
        self.assertEqual(self.current(), (None, 0))

    def test_tenant_field_is_filled_from_the_context(self):
        with tenant(host="globex.test") as globex:
            order = Order.objects.create(title="g1")
            self.assertEqual(order.tenant_id, globex)  # read back from the database
        self.assertEqual(self.current(), (None, 0))
        with tenant(host="acme.test"):
            self.assertEqual(list(Order.objects.values_list("title", flat=True)), [])
