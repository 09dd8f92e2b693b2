-- POST /Users with a new, unique userName per request.
-- wrk ... -s post_users.lua URL -- <collection path> <token> <tag>
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")
local path, tag
local n = 0

function init(args)
  path = args[1]
  common.auth(args[2])
  tag = args[3]
  wrk.headers["Content-Type"] = "application/scim+json"
end

function request()
  n = n + 1
  local name = "post." .. tag .. "." .. n .. "@example.com"
  local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],' ..
    '"externalId":"ext-post.' .. tag .. "." .. n .. '","userName":"' .. name .. '",' ..
    '"name":{"givenName":"Post","familyName":"Bench","formatted":"Post Bench"},' ..
    '"displayName":"Post Bench","emails":[{"value":"' .. name ..
    '","type":"work","primary":true}],"active":true}'
  return wrk.format("POST", path, nil, body)
end
