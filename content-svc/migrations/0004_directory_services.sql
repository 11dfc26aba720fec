-- The directory grows from a list of links into the install's single source of
-- convenience services: seeded categories, and per service how to apply, where
-- (H5 URL or mini-program), hours, phone, keywords/synonyms, the accounts that show
-- it and whether it is enabled. `directory_entries` stays the service table (so
-- ListServices and its rows keep working); its new columns default to "nothing yet".

-- The categories citizens browse (社保, 医保, 公积金, …). `gbt39666_code` is the code of
-- GB/T 39666 where one has been checked against the standard; NULL until then (a
-- guessed code would be worse than none).
CREATE TABLE directory_categories (
    code          text PRIMARY KEY
        CHECK (char_length(code) <= 64 AND code ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$'),
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 16),
    gbt39666_code text,
    position      integer NOT NULL DEFAULT 0
);

INSERT INTO directory_categories (code, name, position) VALUES
    ('medical_insurance', '医保', 10),
    ('social_security', '社保', 20),
    ('housing_fund', '公积金', 30),
    ('transport', '交通出行', 40),
    ('civil_affairs', '民政', 50),
    ('education', '教育', 60),
    ('healthcare', '医疗卫生', 70),
    ('utilities', '水电气', 80),
    ('household_registration', '户政', 90),
    ('exit_entry', '出入境', 100),
    ('taxation', '税务', 110),
    ('employment', '就业创业', 120),
    ('real_estate', '住房不动产', 130),
    ('legal_aid', '法律援助', 140),
    ('market_regulation', '市场监管', 150),
    ('culture_tourism', '文化旅游', 160),
    ('weather', '气象', 170),
    ('hotline_12345', '12345求助投诉', 180),
    ('marriage', '婚姻登记', 190),
    ('birth', '生育收养', 200),
    ('elderly_care', '养老服务', 210),
    ('disability', '残疾人服务', 220),
    ('veterans', '退役军人', 230),
    ('public_security', '治安消防', 240),
    ('vehicles_licences', '车驾管', 250),
    ('environment', '生态环境', 260),
    ('agriculture', '农业农村', 270),
    ('business_registration', '企业开办', 280),
    ('credit', '信用查询', 290),
    ('notarization', '公证', 300),
    ('funeral', '殡葬服务', 310),
    ('emergency', '应急避险', 320),
    ('community', '社区服务', 330),
    ('service_hall', '办事大厅', 340);

ALTER TABLE directory_entries
    ADD COLUMN how_to_apply       text NOT NULL DEFAULT '',
    ADD COLUMN miniprogram_appid  text NOT NULL DEFAULT '',
    ADD COLUMN miniprogram_path   text NOT NULL DEFAULT '',
    ADD COLUMN hours              text NOT NULL DEFAULT '',
    ADD COLUMN phone              text NOT NULL DEFAULT '',
    -- Words a citizen types for it (社保卡补办) and other names (医保 ↔ 医疗保险).
    ADD COLUMN keywords           text[] NOT NULL DEFAULT '{}',
    ADD COLUMN synonyms           text[] NOT NULL DEFAULT '{}',
    -- Further accounts that show it besides `account` (its owning account).
    ADD COLUMN also_shown_on      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN enabled            boolean NOT NULL DEFAULT true,
    ADD COLUMN updated_at         timestamptz NOT NULL DEFAULT now();

-- Serves ListServices for the accounts that show a service without owning it.
CREATE INDEX directory_entries_also_shown_on ON directory_entries USING gin (also_shown_on);

-- Who changed which service, how (created, updated, deleted), and the service as
-- it was after the change (before it, for a deletion).
CREATE TABLE directory_audit (
    id          bigserial PRIMARY KEY,
    service_id  uuid NOT NULL,
    action      text NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    actor       text NOT NULL,
    department  text NOT NULL,
    snapshot    jsonb NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX directory_audit_service ON directory_audit (service_id, id);
