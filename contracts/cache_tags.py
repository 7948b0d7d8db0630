"""The tags read caches are evicted by (``common.cache.TaggedCache``): a change
event or a write names what changed, every entry showing it goes."""


def customer_tag(customer_id):
    """What shows this customer: ``customer_tag(1) == "customer:1"``."""
    return "customer:{}".format(customer_id)


def product_tag(product_id):
    """What shows this product, its stock included."""
    return "product:{}".format(product_id)


def bill_tag(bill_id):
    """What shows this bill (its status changes once: when it is cancelled)."""
    return "bill:{}".format(bill_id)


def full_bill_key(bill_id):
    """The cache key of a full bill (tagged with its customer and products)."""
    return "bill:{}:full".format(bill_id)
