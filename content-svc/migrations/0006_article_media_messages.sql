-- Images for articles, WeChat's per-minute call ledger, multi-article messages and
-- the one post-publish edit (issue 10).

-- An image an editor uploaded (UploadImage): referenced from a body as
-- `<img src="image:{id}">` or as an article's cover. What WeChat made of it is kept
-- so an image is uploaded once: uploadimg's URL (body) and add_material's media id
-- (cover).
CREATE TABLE article_images (
    id              uuid PRIMARY KEY,
    account         text NOT NULL,
    department      text NOT NULL,
    filename        text NOT NULL,
    content_type    text NOT NULL,
    bytes           bytea NOT NULL,
    sha256          text NOT NULL,
    uploaded_by     text NOT NULL,
    wechat_url      text,
    material_media_id text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX article_images_account ON article_images (account, created_at DESC);

ALTER TABLE articles ADD COLUMN cover_image_id uuid REFERENCES article_images (id);

-- Every WeChat API call made per account and API, for the 60-a-minute limit checked
-- before calling; rows older than the window are trimmed as calls are reserved.
CREATE TABLE api_call_ledger (
    id        bigserial PRIMARY KEY,
    account   text NOT NULL,
    api       text NOT NULL,
    called_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_call_ledger_window ON api_call_ledger (account, api, called_at);

-- A multi-article message: approved articles sent together, the first (position 1)
-- the headline. The headline's schedule, publish and WeChat job carry the message;
-- the others follow it.
CREATE TABLE messages (
    id         uuid PRIMARY KEY,
    account    text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE articles ADD COLUMN message_id uuid REFERENCES messages (id);
ALTER TABLE articles ADD COLUMN message_position smallint;
CREATE UNIQUE INDEX articles_message_position ON articles (message_id, message_position)
    WHERE message_id IS NOT NULL;
