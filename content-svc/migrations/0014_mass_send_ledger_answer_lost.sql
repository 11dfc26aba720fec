-- A reservation whose send may have reached WeChat (an attempt's answer was lost: a
-- timeout, a proxy's 5xx) is never given back: WeChat may have counted it. One whose
-- attempts WeChat refused or never received is given back when the send is
-- cancelled or fails for good.
ALTER TABLE mass_send_ledger ADD COLUMN answer_lost boolean NOT NULL DEFAULT false;
