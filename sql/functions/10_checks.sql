-- functions/10_checks.sql - input checks shared by every rule: the refusal
-- helper, required text, key ids and the Unified Social Credit Code (GB
-- 32100-2015).
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

CREATE OR REPLACE FUNCTION refuse(p_state text, p_message text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = p_state, MESSAGE = p_message;
END $$;

CREATE OR REPLACE FUNCTION require_text(p_value text, p_field text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' THEN
        PERFORM refuse('CR001', format('%s is required', p_field));
    END IF;
END $$;

-- "64 characters, none outside 0-9a-f": the regex '^[0-9a-f]{64}$' costs
-- ten times as much (005_hex_checks.sql), and every decide() pays it.
CREATE OR REPLACE FUNCTION require_key_id(p_key_id text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_key_id IS NULL OR length(p_key_id) <> 64 OR p_key_id ~ '[^0-9a-f]' THEN
        PERFORM refuse('CR001', 'key id must be 64 lowercase hex digits');
    END IF;
END $$;

-- GB 32100-2015 check character, and the GB 11714 check digit of the
-- organisation code embedded at positions 9-17.
CREATE OR REPLACE FUNCTION uscc_valid(p text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    charset constant text := '0123456789ABCDEFGHJKLMNPQRTUWXY';
    sum int := 0;
    weight int := 1;
    check_value int;
    org_weights constant int[] := '{3,7,9,10,5,8,4,2}';
    c text;
    v int;
BEGIN
    IF p IS NULL OR p !~ '^[0-9ABCDEFGHJKLMNPQRTUWXY]{2}[0-9]{6}[0-9A-Z]{9}[0-9ABCDEFGHJKLMNPQRTUWXY]$' THEN
        RETURN false;
    END IF;
    FOR i IN 1..17 LOOP
        v := strpos(charset, substr(p, i, 1)) - 1;
        IF v < 0 THEN
            RETURN false;
        END IF;
        sum := sum + v * weight;
        weight := (weight * 3) % 31;
    END LOOP;
    check_value := (31 - sum % 31) % 31;
    IF substr(charset, check_value + 1, 1) <> substr(p, 18, 1) THEN
        RETURN false;
    END IF;
    sum := 0;
    FOR i IN 1..8 LOOP
        c := substr(p, 8 + i, 1);
        v := CASE WHEN c ~ '[0-9]' THEN ascii(c) - 48 ELSE ascii(c) - 55 END;
        sum := sum + v * org_weights[i];
    END LOOP;
    check_value := 11 - sum % 11;
    RETURN substr(p, 17, 1) = CASE check_value WHEN 10 THEN 'X' WHEN 11 THEN '0'
                                               ELSE check_value::text END;
END $$;

RESET ROLE;
