DROP TABLE server_secrets;
DROP TABLE personal_qr;
