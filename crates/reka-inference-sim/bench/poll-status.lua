-- wrk script: GET .../status for request ids read from IDS (default /tmp/sim-ids.txt),
-- cycling through them so every poll hits a different job.
local path = os.getenv("IDS") or "/tmp/sim-ids.txt"
local ids = {}
for line in io.lines(path) do ids[#ids + 1] = line end
local i = math.random(#ids)
local headers = { ["X-Api-Key"] = os.getenv("KEY") or "sim-dev-key" }

request = function()
  i = i % #ids + 1
  return wrk.format("GET", "/v2/inference/requests/" .. ids[i] .. "/status", headers)
end

response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
