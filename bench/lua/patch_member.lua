-- PATCH a group: add one new member per request (ids taken in order from a file, from an
-- offset, so no request repeats an earlier one).
-- wrk ... -s patch_member.lua URL -- <group path> <token> <ids file> <offset>
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")
local path, ids
local n = 0

function init(args)
  path = args[1]
  common.auth(args[2])
  ids = common.lines(args[3])
  n = tonumber(args[4]) or 0
  wrk.headers["Content-Type"] = "application/scim+json"
end

function request()
  n = n + 1
  local id = ids[(n - 1) % #ids + 1]
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
    '"Operations":[{"op":"add","path":"members","value":[{"value":"' .. id .. '"}]}]}'
  return wrk.format("PATCH", path, nil, body)
end
