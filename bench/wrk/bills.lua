-- POST /bills: one unit of the benchmark's product for one of its customers,
-- spread over the customers given in the environment (BENCH_CUSTOMERS="4,5,6").
local customers = {}
for id in string.gmatch(os.getenv("BENCH_CUSTOMERS") or "1", "%d+") do
  table.insert(customers, id)
end
local product = os.getenv("BENCH_PRODUCT") or "1"
local n = 0

function request()
  n = n + 1
  local body = string.format('{"customer_id": %s, "items": [{"product_id": %s, "quantity": 1}]}',
                             customers[n % #customers + 1], product)
  return wrk.format("POST", "/bills", {["Content-Type"] = "application/json"}, body)
end
