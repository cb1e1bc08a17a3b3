# frozen_string_literal: true

require "openssl"
require "socket"

module Bench
  # TLS for the `ssl` scenario: TLS 1.3 with a self-signed EC P-256
  # certificate made at load time, over UNIX socket pairs.
  module TLS
    RECORD = ("x" * 16 * 1024).freeze # one full TLS record per message

    def self.certificate
      @certificate ||= begin
        key = OpenSSL::PKey::EC.generate("prime256v1")
        cert = OpenSSL::X509::Certificate.new
        cert.version = 2
        cert.serial = 1
        cert.subject = cert.issuer = OpenSSL::X509::Name.parse("/CN=localhost")
        cert.public_key = key
        cert.not_before = Time.now - 60
        cert.not_after = Time.now + 3600
        cert.sign(key, "SHA256")
        [cert, key]
      end
    end

    # [server, client] SSLSockets over a UNIX socket pair, not handshaken.
    def self.pair
      cert, key = certificate
      server = OpenSSL::SSL::SSLContext.new
      server.cert = cert
      server.key = key
      server.min_version = OpenSSL::SSL::TLS1_3_VERSION
      client = OpenSSL::SSL::SSLContext.new
      client.verify_mode = OpenSSL::SSL::VERIFY_NONE
      a, b = UNIXSocket.pair
      [OpenSSL::SSL::SSLSocket.new(a, server), OpenSSL::SSL::SSLSocket.new(b, client)].each { it.sync_close = true }
    end

    def self.close(pairs) = pairs&.flatten&.each { it.to_io.close unless it.to_io.closed? }
  end
end
