-- POST /api/login/ with one valid account.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username": "' .. os.getenv("LOGIN_USER") .. '", "password": "' .. os.getenv("LOGIN_PASSWORD") .. '"}'
