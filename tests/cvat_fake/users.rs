//! Auth and users: login, registration, `users/self`, the user list.

use super::http::{Req, Resp, paginate};
use super::model::{State, User};
use base64::Engine;
use serde_json::{Value, json};

/// Who sent a request, from its `Authorization` header.
pub enum Caller {
    User(u64),
    Missing,
    BadToken,
}

/// Resolves `Token <key>` or `Basic base64(user:pass)`.
pub fn caller(state: &State, req: &Req) -> Caller {
    let Some(auth) = req.header("authorization") else {
        return Caller::Missing;
    };
    if let Some(key) = auth.strip_prefix("Token ") {
        return match state.users.iter().find(|u| u.key == key.trim()) {
            Some(u) => Caller::User(u.id),
            None => Caller::BadToken,
        };
    }
    if let Some(b64) = auth.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        let (name, pass) = decoded.split_once(':').unwrap_or(("", ""));
        return match state
            .users
            .iter()
            .find(|u| u.username == name && u.password == pass)
        {
            Some(u) => Caller::User(u.id),
            None => Caller::BadToken,
        };
    }
    Caller::BadToken
}

/// `POST /api/auth/login`.
pub fn login(state: &mut State, req: &Req) -> Resp {
    let body = req.json();
    let name = body["username"].as_str().unwrap_or_default();
    let pass = body["password"].as_str().unwrap_or_default();
    // An email, when sent (FiftyOne sends `FIFTYONE_CVAT_EMAIL`), must be the user's.
    let email = body["email"].as_str();
    let stamp = state.now();
    match state
        .users
        .iter_mut()
        .find(|u| u.username == name && u.password == pass && email.is_none_or(|e| e == u.email))
    {
        Some(u) => {
            u.last_login = Some(stamp);
            Resp::json(200, json!({ "key": u.key }))
        }
        None => Resp::json(
            400,
            json!({"non_field_errors": ["Unable to log in with provided credentials."]}),
        ),
    }
}

/// `POST /api/auth/register`: no auth needed; the answer carries the new user's key but no id.
pub fn register(state: &mut State, req: &Req) -> Resp {
    let body = req.json();
    let s = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    let mut errors = serde_json::Map::new();
    if state.users.iter().any(|u| u.username == s("username")) {
        errors.insert(
            "username".into(),
            json!(["A user with that username already exists."]),
        );
    }
    if state.users.iter().any(|u| u.email == s("email")) {
        errors.insert(
            "email".into(),
            json!(["A user is already registered with this e-mail address."]),
        );
    }
    if s("password1") != s("password2") {
        errors.insert(
            "non_field_errors".into(),
            json!(["The two password fields didn't match."]),
        );
    }
    if !errors.is_empty() {
        return Resp::json(400, Value::Object(errors));
    }
    let id = state.seq.next("user");
    let key = state.new_key();
    let stamp = state.now();
    let user = User {
        id,
        username: s("username"),
        email: s("email"),
        first_name: s("first_name"),
        last_name: s("last_name"),
        password: s("password1"),
        key: key.clone(),
        admin: false,
        date_joined: stamp.clone(),
        // Registration logs the user in, so the real server showed a last_login at once.
        last_login: Some(stamp),
    };
    let out = json!({
        "username": user.username, "email": user.email, "first_name": user.first_name,
        "last_name": user.last_name, "email_verification_required": false, "key": key,
    });
    state.users.push(user);
    Resp::json(201, out)
}

/// A user as `/api/users` shows it.
pub fn user_json(base: &str, u: &User) -> Value {
    let group = if u.admin { "admin" } else { "user" };
    json!({
        "url": format!("{base}/api/users/{}", u.id), "id": u.id, "username": u.username,
        "first_name": u.first_name, "last_name": u.last_name, "email": u.email,
        "groups": [group], "is_staff": u.admin, "is_superuser": u.admin, "is_active": true,
        "last_login": u.last_login, "date_joined": u.date_joined, "has_analytics_access": u.admin,
    })
}

/// `GET /api/users` with `search` (substring of username/first/last name) and exact filters.
pub fn list(state: &State, req: &Req) -> Resp {
    let search = req.q("search").map(str::to_lowercase);
    let mut users: Vec<&User> = state
        .users
        .iter()
        .filter(|u| {
            search.as_ref().is_none_or(|s| {
                [&u.username, &u.first_name, &u.last_name]
                    .iter()
                    .any(|f| f.to_lowercase().contains(s))
            })
        })
        .filter(|u| req.q("username").is_none_or(|n| u.username == n))
        .filter(|u| req.q("id").is_none_or(|n| u.id.to_string() == n))
        .collect();
    // The real server listed users newest first.
    users.sort_by_key(|u| std::cmp::Reverse(u.id));
    let items = users.iter().map(|u| user_json(&req.base, u)).collect();
    paginate(req, "users", items)
}

/// `GET|DELETE /api/users/{id}` and `GET /api/users/self`.
pub fn one(state: &mut State, req: &Req, caller: u64, which: &str) -> Resp {
    let id = if which == "self" {
        caller
    } else {
        which.parse().unwrap_or(0)
    };
    let Some(pos) = state.users.iter().position(|u| u.id == id) else {
        return Resp::not_found("User");
    };
    match req.method.as_str() {
        "GET" => Resp::json(200, user_json(&req.base, &state.users[pos])),
        "DELETE" if which != "self" => {
            state.users.remove(pos);
            Resp::empty(204)
        }
        m => Resp::detail(405, &format!("Method \"{m}\" not allowed.")),
    }
}
