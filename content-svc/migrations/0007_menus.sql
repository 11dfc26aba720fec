-- Custom menus (issue 11): per account, the default menu (tag_id 0) and one
-- conditional menu per WeChat user tag, each kept as numbered versions (who saved
-- each and when), and every publication attempt with its outcome. A publication is
-- recorded as `publishing` and committed before WeChat is called, then settled.
CREATE TABLE menus (
    account            text    NOT NULL CHECK (char_length(account) BETWEEN 1 AND 64),
    tag_id             bigint  NOT NULL DEFAULT 0 CHECK (tag_id >= 0),
    latest_version     integer NOT NULL DEFAULT 0,
    state              text    NOT NULL DEFAULT 'draft'
        CHECK (state IN ('draft', 'publishing', 'published', 'failed')),
    -- The version WeChat shows, if any.
    published_version  integer,
    -- The publication under way (menu_publications.id) and since when: a replica
    -- that died mid-call leaves it, and a later publication may take over after a while.
    publishing_id      bigint,
    publishing_since   timestamptz,
    -- A published conditional menu's id on WeChat (needed to delete it).
    wechat_menuid      text,
    last_error         text    NOT NULL DEFAULT '',
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, tag_id)
);

CREATE TABLE menu_versions (
    account   text    NOT NULL,
    tag_id    bigint  NOT NULL,
    version   integer NOT NULL CHECK (version >= 1),
    -- domain::menu's buttons as JSON (directory targets unresolved).
    buttons   jsonb   NOT NULL,
    saved_by  text    NOT NULL,
    saved_at  timestamptz NOT NULL DEFAULT now(),
    note      text    NOT NULL DEFAULT '' CHECK (char_length(note) <= 200),
    PRIMARY KEY (account, tag_id, version),
    FOREIGN KEY (account, tag_id) REFERENCES menus (account, tag_id)
);

CREATE TABLE menu_publications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account       text    NOT NULL,
    tag_id        bigint  NOT NULL,
    -- NULL when a conditional menu is taken off WeChat.
    version       integer,
    action        text    NOT NULL CHECK (action IN ('publish', 'unpublish')),
    actor         text    NOT NULL,
    state         text    NOT NULL CHECK (state IN ('publishing', 'published', 'failed')),
    error         text    NOT NULL DEFAULT '',
    wechat_menuid text,
    -- The exact body sent to WeChat (categories and the hall resolved).
    sent          jsonb,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    FOREIGN KEY (account, tag_id) REFERENCES menus (account, tag_id)
);
CREATE INDEX menu_publications_menu ON menu_publications (account, tag_id, id DESC);
