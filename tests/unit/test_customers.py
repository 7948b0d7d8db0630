"""customers alone (``worker_factory``, SQLite, billing mocked)."""
import pytest

from contracts.errors import CustomerHasBills, CustomerNotFound, EmailTaken, InvalidInput


def test_customers_create_validates_and_keeps_emails_unique(customers):
    created = customers.create_customer({"name": " Ali ", "email": "ali@mail.com"})
    assert created == {"id": 4, "name": "Ali", "email": "ali@mail.com"}
    with pytest.raises(EmailTaken, match="ali@mail.com"):
        customers.create_customer({"name": "Other", "email": "ali@mail.com"})
    with pytest.raises(InvalidInput, match="email"):
        customers.create_customer({"name": "X", "email": "x"})
    with pytest.raises(InvalidInput, match="name"):
        customers.create_customer({"name": "", "email": "y@mail.com"})
    assert customers.list_customers()["page"]["total_items"] == 4


def test_customers_get_many_in_one_call(customers):
    assert [c["id"] for c in customers.get_customers([3, 1, 42])["items"]] == [1, 3]
    with pytest.raises(CustomerNotFound):
        customers.get_customer(42)


def test_customers_delete_asks_billing_first(customers):
    customers.billing.count_bills.return_value = 2
    with pytest.raises(CustomerHasBills):
        customers.delete_customer(1)
    customers.billing.count_bills.assert_called_once_with(customer_id=1)
    assert customers.get_customer(1)["name"] == "Mohamed"
    customers.billing.count_bills.return_value = 0
    assert customers.delete_customer(1) == {"id": 1, "deleted": True}
    with pytest.raises(CustomerNotFound):
        customers.get_customer(1)
