# frozen_string_literal: true

require "openssl"
require "socket"
require "tmpdir"

module UMFuzz
  # The live objects one fuzz case plays with: a machine (and a second one),
  # pipes, socket pairs, a TCP connection on loopback, files in a tmp dir, a
  # TLS pair after a real handshake, a queue, a mutex, a scheduler, UM::IO
  # objects and the fibers the case spins.
  class World
    attr_reader :machine, :other_machine, :fds, :fibers, :queue, :mutex, :scheduler, :dir, :file_path, :map_path,
                :port, :listener, :shared_buffer, :ios, :ssl_pairs, :ops, :unexpected

    def initialize(dir)
      @dir = dir
      @machine = UM.new(64)
      @other_machine = UM.new(16)
      @fds = []
      @fibers = []
      @ios = []
      @ssl_pairs = []
      @ops = []
      @unexpected = []
      @queue = UM::Queue.new
      @mutex = UM::Mutex.new
      @scheduler = UM::FiberScheduler.new(@machine)
      @shared_buffer = IO::Buffer.new(128)
      @file_path = File.join(dir, "file")
      File.write(@file_path, "file contents\nsecond line\n" * 20)
      @map_path = File.join(dir, "mapped")
      File.write(@map_path, "m" * 4096)
    end

    # Opens the first fds: a pipe, a socket pair, a TCP pair and a file.
    def populate
      add_pipe
      add_socketpair
      add_tcp_pair
      add_file
      self
    end

    def add_pipe = @fds.concat(UM.pipe)
    def add_socketpair = @fds.concat(UM.socketpair(UM::AF_UNIX, UM::SOCK_STREAM, 0))
    def add_file = @fds << @machine.open(@file_path, UM::O_RDWR)

    # A listening socket on a loopback port chosen by the kernel, and a
    # connection to it (both ends are world fds).
    def add_tcp_pair
      unless @listener
        @listener = @machine.socket(UM::AF_INET, UM::SOCK_STREAM, 0, 0)
        @machine.setsockopt(@listener, UM::SOL_SOCKET, UM::SO_REUSEADDR, true)
        @machine.bind(@listener, "127.0.0.1", 0)
        @machine.listen(@listener, 64)
        wrapper = Socket.for_fd(@listener).tap { |s| s.autoclose = false }
        @port = Socket.unpack_sockaddr_in(wrapper.getsockname).first
        @fds << @listener
      end
      client = @machine.socket(UM::AF_INET, UM::SOCK_STREAM, 0, 0)
      @machine.connect(client, "127.0.0.1", @port)
      @fds << client << @machine.accept(@listener)
    end

    # A TLS pair over a socket pair, through the machine, handshaken.
    def add_ssl_pair
      a, b = UNIXSocket.pair
      server = OpenSSL::SSL::SSLSocket.new(a, Cert.server_context)
      client = OpenSSL::SSL::SSLSocket.new(b, Cert.client_context)
      server.sync_close = client.sync_close = true
      client.hostname = "localhost"
      @machine.ssl_set_bio(server)
      @machine.ssl_set_bio(client)
      accepter = @machine.spin { server.accept }
      @machine.timeout(5, FuzzError) do
        client.connect
        @machine.join(accepter)
      end
      @ssl_pairs << [server, client, a, b]
    end

    def ssl_sockets = @ssl_pairs.flat_map { |pair| pair.first(2) }

    def track_fiber(fiber)
      @fibers << fiber
      @fibers.shift if @fibers.size > 40
      fiber
    end
  end

  # A self-signed certificate for localhost, and contexts using it.
  module Cert
    class << self
      def key = (@key ||= OpenSSL::PKey::EC.generate("prime256v1"))

      def cert
        @cert ||= begin
          cert = OpenSSL::X509::Certificate.new
          cert.version = 2
          cert.serial = 1
          cert.subject = cert.issuer = OpenSSL::X509::Name.parse("/CN=localhost")
          cert.public_key = key
          cert.not_before = Time.now - 60
          cert.not_after = Time.now + 3600
          ext = OpenSSL::X509::ExtensionFactory.new(cert, cert)
          cert.add_extension(ext.create_extension("subjectAltName", "DNS:localhost", false))
          cert.sign(key, "SHA256")
          cert
        end
      end

      def server_context
        ctx = OpenSSL::SSL::SSLContext.new
        ctx.cert = cert
        ctx.key = key
        ctx
      end

      def client_context
        ctx = OpenSSL::SSL::SSLContext.new
        ctx.verify_mode = OpenSSL::SSL::VERIFY_PEER
        ctx.verify_hostname = true
        store = OpenSSL::X509::Store.new
        store.add_cert(cert)
        ctx.cert_store = store
        ctx
      end
    end
  end
end
