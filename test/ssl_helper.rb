# frozen_string_literal: true

# Helpers of the SSL tests (test_ssl*.rb).
require_relative "scheduler_helper"
require "openssl"
require "socket"
require "digest"
require "net/http"

# Helpers shared by the SSL tests: contexts trusting a self-signed test
# certificate (SSLTestCert, at the bottom of the file), TLS socket pairs over
# UNIXSocket.pair whose raw sockets are closed after the test, and fiber runs
# guarded against hangs.
module SSLTestHelpers
  # Raised in the test's fiber when something takes too long.
  class HangError < RuntimeError; end

  # Raised by the interruption tests.
  class MyError < StandardError; end

  def server_context(min_version: nil, max_version: nil)
    ctx = OpenSSL::SSL::SSLContext.new
    ctx.cert = SSLTestCert.cert
    ctx.key = SSLTestCert.key
    ctx.min_version = min_version if min_version
    ctx.max_version = max_version if max_version
    ctx
  end

  # A context that verifies the peer against the store (by default, one
  # trusting the test certificate) and checks the hostname.
  def client_context(store: SSLTestCert.store, min_version: nil, max_version: nil)
    ctx = OpenSSL::SSL::SSLContext.new
    ctx.verify_mode = OpenSSL::SSL::VERIFY_PEER
    ctx.verify_hostname = true
    ctx.cert_store = store
    ctx.min_version = min_version if min_version
    ctx.max_version = max_version if max_version
    ctx
  end

  # Raw sockets closed after the test.
  def track_io(*ios)
    (@ssl_ios ||= []).concat(ios)
    ios.size == 1 ? ios.first : ios
  end

  def close_tracked_ios
    @ssl_ios&.each { |io| io.close unless io.closed? }
    @ssl_ios&.clear
  end

  def raw_pair
    track_io(*UNIXSocket.pair)
  end

  # [server, client] SSL sockets over a socket pair, not yet handshaken; with
  # bio (the default) both are put on the machine.
  def ssl_pair(sctx = server_context, cctx = client_context, hostname: "localhost", bio: true, machine: @machine)
    a, b = raw_pair
    server = OpenSSL::SSL::SSLSocket.new(a, sctx)
    client = OpenSSL::SSL::SSLSocket.new(b, cctx)
    server.sync_close = client.sync_close = true
    client.hostname = hostname
    if bio
      machine.ssl_set_bio(server)
      machine.ssl_set_bio(client)
    end
    [server, client]
  end

  # Runs the fibers to their end (at most seconds); returns their results.
  # A hang terminates them and raises HangError.
  def run_fibers(*fibers, seconds: 5, machine: @machine)
    machine.timeout(seconds, HangError) { machine.join(*fibers) }
    results = fibers.map(&:result)
    fibers.size == 1 ? results.first : results
  rescue HangError
    machine.terminate(*fibers)
    begin
      machine.timeout(1, HangError) { machine.join(*fibers) }
    rescue HangError
      nil
    end
    raise HangError, "fibers still running after #{seconds} s"
  end

  # As run_fibers, raising the first exception a fiber ended with.
  def run_fibers!(*fibers, **opts)
    results = Array(run_fibers(*fibers, **opts)) if fibers.size > 1
    results ||= [run_fibers(*fibers, **opts)]
    error = results.find { |r| r.is_a?(Exception) }
    raise error if error

    fibers.size == 1 ? results.first : results
  end

  # Handshakes the pair in two fibers (accept and connect).
  def handshake(server, client, machine: @machine)
    run_fibers!(machine.spin { server.accept }, machine.spin { client.connect }, machine: machine)
  end

  # [server, client], on the machine and handshaken.
  def connected_pair(...)
    server, client = ssl_pair(...)
    handshake(server, client)
    [server, client]
  end

  # Reads exactly len bytes with ssl_read (or fewer at EOF).
  def ssl_read_full(ssl, len, chunk = 65_536, machine: @machine)
    data = +""
    buf = +""
    while data.bytesize < len
      n = machine.ssl_read(ssl, buf, [chunk, len - data.bytesize].min)
      break if n.zero?

      data << buf
    end
    data
  end

  # Reads with readpartial until exactly len bytes (or EOF).
  def readpartial_full(ssl, len, chunk = 65_536)
    data = +""
    buf = +""
    while data.bytesize < len
      begin
        data << ssl.readpartial([chunk, len - data.bytesize].min, buf)
      rescue EOFError
        break
      end
    end
    data
  end
end

# A self-signed certificate for localhost and 127.0.0.1, generated once per
# run.
module SSLTestCert
  class << self
    def key
      @key ||= OpenSSL::PKey::EC.generate("prime256v1")
    end

    def cert
      @cert ||= begin
        cert = OpenSSL::X509::Certificate.new
        cert.version = 2
        cert.serial = 1
        name = OpenSSL::X509::Name.parse("/CN=localhost")
        cert.subject = cert.issuer = name
        cert.public_key = key
        cert.not_before = Time.now - 60
        cert.not_after = Time.now + 3600
        ext = OpenSSL::X509::ExtensionFactory.new(cert, cert)
        cert.add_extension(ext.create_extension("basicConstraints", "CA:TRUE", true))
        cert.add_extension(ext.create_extension("subjectAltName", "DNS:localhost,IP:127.0.0.1"))
        cert.add_extension(ext.create_extension("subjectKeyIdentifier", "hash"))
        cert.sign(key, "SHA256")
        cert
      end
    end

    # A store trusting only the test certificate.
    def store
      store = OpenSSL::X509::Store.new
      store.add_cert(cert)
      store
    end
  end
end
