-- A random number fixed when an account is created. With the name it is
-- what a login is to: an account dropped and registered again under the
-- same name (even within the same second) gets another, so logins to the
-- old one grant nothing on the new one. Accounts made before this column
-- existed share 0, which no new account gets.
ALTER TABLE accounts ADD COLUMN uid INTEGER NOT NULL DEFAULT 0;
