from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from django_flakeid.admin import SnowflakeAdminMixin
from django_flakeid.admin_filters import SnowflakeDateFilter, SnowflakeDateHierarchyFilter
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import MAX_ID, Layout
from tests.testapp.admin import ArticleAdmin, OrderAdmin
from tests.testapp.models import (
    Article,
    Customer,
    ExternalRecord,
    NullableThing,
    Order,
    Profile,
    Tag,
)

pytestmark = pytest.mark.django_db

PANEL = "snowflake_id_details"


def id_at(when: str, sequence: int = 0) -> int:
    """An ID from datacenter 1, machine 7 (tests.settings) stamped at ``when`` (UTC)."""
    ms = int(dt.datetime.fromisoformat(when).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    generator = SnowflakeGenerator(datacenter_id=1, machine_id=7, clock=lambda: ms)
    return generator.next_ids(sequence + 1)[-1]


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


class TestChangelist:
    def test_time_column_after_the_users_columns(self, admin_client: Client) -> None:
        Order.objects.create(id=id_at("2024-03-05T06:07:08.009"), reference="R-1")

        response = admin_client.get(reverse("admin:testapp_order_changelist"))

        columns = response.context["cl"].list_display
        assert columns[:3] == ["action_checkbox", "reference", "customer"]
        assert [column.__name__ for column in columns[3:]] == ["id_created"]
        content = response.content.decode()
        assert "Created (from ID)" in content
        assert '<td class="field-id_created">March 5, 2024, 6:07 a.m.</td>' in content

    def test_time_in_the_current_time_zone(self, admin_client: Client) -> None:
        Order.objects.create(id=id_at("2024-03-05T06:07:08.009"), reference="R-1")

        with override_settings(TIME_ZONE="Asia/Tokyo"):
            content = page(admin_client, reverse("admin:testapp_order_changelist"))

        assert '<td class="field-id_created">March 5, 2024, 3:07 p.m.</td>' in content

    def test_sorts_by_the_id(self, admin_client: Client) -> None:
        late = Order.objects.create(id=id_at("2024-05-01T00:00:00"), reference="late")
        early = Order.objects.create(id=id_at("2023-01-01T00:00:00"), reference="early")
        middle = Order.objects.create(id=id_at("2024-01-01T00:00:00"), reference="middle")
        url = reverse("admin:testapp_order_changelist")

        ascending = admin_client.get(url, {"o": "3"})
        descending = admin_client.get(url, {"o": "-3"})

        assert list(ascending.context["cl"].result_list) == [early, middle, late]
        assert list(descending.context["cl"].result_list) == [late, middle, early]
        assert 'class="sortable column-id_created sorted ascending"' in ascending.content.decode()

    def test_plain_snowflake_column(self, admin_client: Client) -> None:
        Article.objects.create(public_id=id_at("2024-03-05T06:07:08"), title="Hello")

        content = page(admin_client, reverse("admin:testapp_article_changelist"))

        assert "Created (from public id)" in content
        assert '<td class="field-public_id_created">March 5, 2024, 6:07 a.m.</td>' in content

    def test_empty_value(self, admin_client: Client) -> None:
        NullableThing.objects.create(filled=None)

        content = page(admin_client, reverse("admin:testapp_nullablething_changelist"))

        assert '<td class="field-filled_created">-</td>' in content
        assert "field-empty_created" not in content

    def test_columns_are_built_once(self) -> None:
        model_admin = admin.site.get_model_admin(Order)
        request = RequestFactory().get("/")

        first = model_admin.get_list_display(request)
        second = model_admin.get_list_display(request)

        assert first[-1] is second[-1]


class TestChangePage:
    def test_panel_after_the_users_fieldsets(self, admin_client: Client) -> None:
        order = Order.objects.create(id=id_at("2024-03-05T06:07:08.009", sequence=2))

        response = admin_client.get(reverse("admin:testapp_order_change", args=[order.pk]))

        fieldsets = [name for name, _options in response.context["adminform"].fieldsets]
        assert fieldsets == [None, "Lines", "Snowflake ID"]
        content = response.content.decode()
        assert (
            "<tbody><tr><td>ID</td>"
            "<td>March 5, 2024, 6:07 a.m. <code>2024-03-05T06:07:08.009Z</code></td>"
            "<td>1</td><td>7</td><td>2</td></tr></tbody>"
        ) in content
        assert "<th>Datacenter</th><th>Machine</th><th>Sequence</th>" in content
        assert "field-line_count" in content

    def test_panel_in_the_current_time_zone(self, admin_client: Client) -> None:
        order = Order.objects.create(id=id_at("2024-03-05T06:07:08.009"))

        with override_settings(TIME_ZONE="America/New_York"):
            content = page(admin_client, reverse("admin:testapp_order_change", args=[order.pk]))

        assert "March 5, 2024, 1:07 a.m. <code>2024-03-05T06:07:08.009Z</code>" in content

    def test_panel_moved_out_of_the_default_fieldset(self, admin_client: Client) -> None:
        customer = Customer.objects.create(name="Ada")

        response = admin_client.get(reverse("admin:testapp_customer_change", args=[customer.pk]))

        fieldsets = response.context["adminform"].fieldsets
        assert fieldsets == [(None, {"fields": ["name"]}), ("Snowflake ID", {"fields": [PANEL]})]
        assert response.content.decode().count('class="flakeid-details"') == 1

    def test_panel_placed_by_hand_stays_put(self, admin_client: Client) -> None:
        tag = Tag.objects.create(name="gift")

        response = admin_client.get(reverse("admin:testapp_tag_change", args=[tag.pk]))

        fieldsets = response.context["adminform"].fieldsets
        assert fieldsets == [(None, {"fields": ("name", PANEL)})]
        assert 'class="flakeid-details"' in response.content.decode()

    def test_every_snowflake_field_gets_a_row(self, admin_client: Client) -> None:
        thing = NullableThing.objects.create(filled=None)
        model_admin = admin.site.get_model_admin(NullableThing)

        assert "<td>Filled</td><td>-</td><td>-</td><td>-</td><td>-</td>" in str(
            model_admin.snowflake_id_details(thing)  # type: ignore[attr-defined]
        )
        assert "<td>Empty</td>" not in page(
            admin_client, reverse("admin:testapp_nullablething_change", args=[thing.pk])
        )


class TestUndecodable:
    def test_negative_value(self, admin_client: Client) -> None:
        record = ExternalRecord.objects.create(source_id=-1)
        model_admin = admin.site.get_model_admin(ExternalRecord)
        request = RequestFactory().get("/")

        [column] = model_admin.get_list_display(request)[1:]

        assert callable(column)
        assert column(record) is None
        assert "<td>Source id</td><td>-</td><td>-</td><td>-</td><td>-</td>" in str(
            model_admin.snowflake_id_details(record)  # type: ignore[attr-defined]
        )
        content = page(admin_client, reverse("admin:testapp_externalrecord_changelist"))
        assert '<td class="field-source_id_created">-</td>' in content

    def test_invalid_setting(self) -> None:
        order = Order.objects.create()
        model_admin = admin.site.get_model_admin(Order)

        with override_settings(FLAKEID={"preset": "nope"}):
            panel = str(model_admin.snowflake_id_details(order))  # type: ignore[attr-defined]

        assert "<td>ID</td><td>-</td><td>-</td><td>-</td><td>-</td>" in panel

    def test_past_the_year_9999(self) -> None:
        record = ExternalRecord(source_id=MAX_ID)
        record.save()
        model_admin = admin.site.get_model_admin(ExternalRecord)

        with override_settings(FLAKEID={"preset": "minimal"}):
            panel = str(model_admin.snowflake_id_details(record))  # type: ignore[attr-defined]

        assert "<td>- <code>+287446-10-13T08:59:00.991Z</code></td>" in panel
        assert "<td>0</td><td>0</td><td>1023</td>" in panel


class TestLegacyKeys:
    """Keys kept from before the table took Snowflake IDs hold no time, and none is shown."""

    FIRST = Layout().min_snowflake_id

    def test_column_marks_them(self, admin_client: Client) -> None:
        Order.objects.create(id=7, reference="old")
        Order.objects.create(id=self.FIRST - 1, reference="last old")
        Order.objects.create(id=self.FIRST, reference="first new")

        content = page(admin_client, reverse("admin:testapp_order_changelist"))

        cells = re.findall(r'<td class="field-id_created">(.*?)</td>', content)
        assert sorted(cells) == ["Jan. 2, 2020, midnight", "legacy key", "legacy key"]
        assert "January 1, 2020" not in content

    def test_mark_can_be_changed_like_the_empty_value(self) -> None:
        class Admin(SnowflakeAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
            snowflake_legacy_display = "(before Snowflake)"

        model_admin = Admin(Order, admin.AdminSite(name="legacy"))
        [column] = model_admin.get_list_display(RequestFactory().get("/"))[1:]

        assert callable(column)
        assert column(Order(id=7)) == "(before Snowflake)"
        assert column(Order(id=self.FIRST)) == "Jan. 2, 2020, midnight"

    def test_panel_says_so_and_shows_no_parts(self, admin_client: Client) -> None:
        order = Order.objects.create(id=42)

        content = page(admin_client, reverse("admin:testapp_order_change", args=[order.pk]))

        assert (
            '<tbody><tr><td>ID</td><td colspan="4">A legacy key from before Snowflake IDs: it '
            "holds no time, datacenter, machine or sequence.</td></tr></tbody>"
        ) in content
        assert "2020" not in content

    def test_panel_rows_of_old_and_new_values(self) -> None:
        class Admin(SnowflakeAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
            pass

        thing = NullableThing.objects.create(filled=3, empty=self.FIRST)
        panel = str(Admin(NullableThing, admin.AdminSite(name="rows")).snowflake_id_details(thing))

        assert re.findall(r"<tr>(.*?)</tr>", panel)[1:] == [
            '<td>Filled</td><td colspan="4">A legacy key from before Snowflake IDs: it holds no '
            "time, datacenter, machine or sequence.</td>",
            "<td>Empty</td><td>Jan. 2, 2020, midnight <code>2020-01-02T00:00:00.000Z</code></td>"
            "<td>0</td><td>0</td><td>0</td>",
        ]

    def test_zero_is_a_legacy_key(self) -> None:
        record = ExternalRecord.objects.create(source_id=0)
        model_admin = admin.site.get_model_admin(ExternalRecord)
        [column] = model_admin.get_list_display(RequestFactory().get("/"))[1:]

        assert callable(column)
        assert column(record) == "legacy key"
        assert 'colspan="4">A legacy key' in str(
            model_admin.snowflake_id_details(record)  # type: ignore[attr-defined]
        )

    @override_settings(FLAKEID={"preset": "minimal"})
    def test_the_boundary_is_the_layouts(self) -> None:
        minimal = Layout(timestamp_bits=53, datacenter_bits=0, machine_bits=0, sequence_bits=10)
        model_admin = admin.site.get_model_admin(Order)
        [column] = model_admin.get_list_display(RequestFactory().get("/"))[2:]

        assert callable(column)
        # Read with the twitter layout this value would be a legacy key.
        assert minimal.min_snowflake_id < self.FIRST
        assert column(Order(id=minimal.min_snowflake_id)) == "Jan. 2, 2020, midnight"
        assert column(Order(id=minimal.min_snowflake_id - 1)) == "legacy key"


class TestAddPage:
    def test_no_id_input_and_no_panel(self, admin_client: Client) -> None:
        response = admin_client.get(reverse("admin:testapp_order_add"))

        fieldsets = [name for name, _options in response.context["adminform"].fieldsets]
        assert fieldsets == [None, "Lines"]
        content = response.content.decode()
        assert 'name="id"' not in content
        assert "flakeid-details" not in content

    def test_panel_placed_by_hand_is_empty(self, admin_client: Client) -> None:
        content = page(admin_client, reverse("admin:testapp_tag_add"))

        assert "flakeid-details" not in content
        assert "field-snowflake_id_details" in content

    def test_post_creates_an_object_with_a_generated_id(self, admin_client: Client) -> None:
        response = admin_client.post(
            reverse("admin:testapp_order_add"), {"reference": "Web-1", "_save": "Save"}
        )

        assert response.status_code == 302
        order = Order.objects.get(reference="Web-1")
        decoded = Order._meta.get_field("id").decode(order.pk)  # type: ignore[union-attr]
        assert (decoded.datacenter_id, decoded.machine_id) == (1, 7)
        assert response["Location"] == reverse("admin:testapp_order_changelist")

    def test_post_to_default_fieldsets(self, admin_client: Client) -> None:
        response = admin_client.post(reverse("admin:testapp_customer_add"), {"name": "Grace"})

        assert response.status_code == 302
        assert Customer.objects.get().name == "Grace"


class TestEscaping:
    def test_verbose_name_is_escaped(
        self, admin_user: User, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        field = Article._meta.get_field("public_id")
        monkeypatch.setattr(field, "verbose_name", "<script>alert(1)</script>")
        article = Article.objects.create(title="<b>Hi</b>")
        model_admin = ArticleAdmin(Article, admin.AdminSite(name="escaping"))
        request = RequestFactory().get("/")
        request.user = admin_user

        panel = str(model_admin.snowflake_id_details(article))
        response = model_admin.changelist_view(request)
        response.render()  # type: ignore[attr-defined]
        content = response.content.decode()

        assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in panel
        assert "<script>alert(1)</script>" not in panel
        assert "Created (from &lt;script&gt;alert(1)&lt;/script&gt;)" in content
        assert "<script>alert(1)</script>" not in content
        assert "&lt;b&gt;Hi&lt;/b&gt;" in content


class TestMixin:
    def test_merges_with_a_plain_admin(self) -> None:
        class Admin(SnowflakeAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
            pass

        model_admin = Admin(Order, admin.AdminSite(name="plain"))
        request = RequestFactory().get("/")

        display = model_admin.get_list_display(request)
        assert display[0] == "__str__"
        assert [column.__name__ for column in display[1:]] == ["id_created"]
        assert model_admin.get_readonly_fields(request) == [PANEL]

    def test_model_without_snowflake_fields_is_left_alone(self) -> None:
        class Admin(SnowflakeAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
            readonly_fields = ("bio",)

        model_admin = Admin(Profile, admin.AdminSite(name="none"))
        request = RequestFactory().get("/")
        profile = Profile(bio="x")

        assert model_admin.get_list_display(request) == ["__str__"]
        assert model_admin.get_readonly_fields(request, profile) == ["bio"]
        assert model_admin.get_fieldsets(request, profile) == [
            (None, {"fields": ["customer", "bio"]})
        ]

    def test_order_admin_keeps_its_own_readonly_fields(self) -> None:
        model_admin = OrderAdmin(Order, admin.AdminSite(name="order"))

        assert model_admin.get_readonly_fields(RequestFactory().get("/")) == [
            "line_count",
            PANEL,
        ]


class TestListFilters:
    def filters(self, model_admin: Any) -> list[Any]:
        return list(model_admin.get_list_filter(RequestFactory().get("/")))

    def test_indexed_snowflake_fields_get_both_filters(self) -> None:
        assert self.filters(admin.site.get_model_admin(Order)) == [
            ("id", SnowflakeDateFilter),
            ("id", SnowflakeDateHierarchyFilter),
        ]
        assert self.filters(admin.site.get_model_admin(Article)) == [
            ("public_id", SnowflakeDateFilter),
            ("public_id", SnowflakeDateHierarchyFilter),
        ]

    def test_a_field_without_an_index_gets_none(self) -> None:
        assert self.filters(admin.site.get_model_admin(NullableThing)) == []

    def test_after_the_users_filters_and_not_twice(self) -> None:
        class Admin(SnowflakeAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
            list_filter = ("customer", ("id", SnowflakeDateHierarchyFilter))

        model_admin = Admin(Order, admin.AdminSite(name="filters"))

        assert self.filters(model_admin) == [
            "customer",
            ("id", SnowflakeDateHierarchyFilter),
            ("id", SnowflakeDateFilter),
        ]

    def test_switched_off(self) -> None:
        class Admin(SnowflakeAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
            list_filter = ("customer",)
            snowflake_filters = False

        assert self.filters(Admin(Order, admin.AdminSite(name="off"))) == ["customer"]
