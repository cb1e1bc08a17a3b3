# frozen_string_literal: true

require "fileutils"
require "open3"

module Site
  # bin/site build: the pages, the API reference, the assets, into OUT.
  class Builder
    # <!-- include: benchmark/report/results.md --> puts a project file's
    # Markdown in the page at build time (the latest benchmark tables).
    INCLUDE = /^<!-- include: (?<path>[\w\/.-]+\.md) -->$/
    IMAGES = "benchmark/report/*.png"

    attr_reader :pages, :api

    def initialize(out: OUT, api: API.new)
      @out = out
      @api = api
      @pages = Page.all
    end

    def build
      FileUtils.rm_rf(@out)
      FileUtils.mkdir_p(@out)
      @api.write(@out)
      markdown = Markdown.new(@api)
      layout = Layout.new(@pages)
      @pages.each do |page|
        html = layout.render(page, markdown.render(expand_includes(page.markdown), page.relative))
        path = File.join(@out, page.output_path)
        FileUtils.mkdir_p(File.dirname(path))
        File.write(path, html)
      end
      write_assets
      self
    end

    private

    def expand_includes(text)
      text.gsub(INCLUDE) do
        file = File.join(PROJECT, Regexp.last_match[:path])
        # The included file's top heading is the page's business.
        File.read(file).sub(/\A# .*\n+/, "").gsub(/^(#+) /, '#\1 ')
      end
    end

    def write_assets
      %w[style.css logo.svg].each { FileUtils.cp(File.join(ASSETS, _1), @out) }
      FileUtils.cp(File.join(ROOT, "CNAME"), @out)
      File.write(File.join(@out, "highlight.css"), Markdown.stylesheet)
      images = File.join(@out, "images")
      FileUtils.mkdir_p(images)
      Dir[File.join(PROJECT, IMAGES)].each { FileUtils.cp(_1, images) }
      favicon
    end

    # The favicon, a PNG drawn from the logo by rsvg-convert (librsvg2-bin),
    # also as favicon.ico for the pages that name none (the API reference).
    def favicon
      env = { "LD_PRELOAD" => nil, "ASAN_OPTIONS" => nil, "UBSAN_OPTIONS" => nil }
      png = File.join(@out, "favicon.png")
      out, status = Open3.capture2e(env, "rsvg-convert", "-w", "64", "-h", "64",
                                    "-o", png, File.join(ASSETS, "logo.svg"))
      raise BuildError, "rsvg-convert failed: #{out}" unless status.success?

      File.binwrite(File.join(@out, "favicon.ico"), ico(File.binread(png), 64))
    end

    # An ICO file holding one PNG image: the 6-byte header, one 16-byte
    # directory entry, the PNG.
    def ico(png, size)
      header = [0, 1, 1].pack("v3")
      entry = [size, size, 0, 0, 1, 32, png.bytesize, 22].pack("C4v2V2")
      header + entry + png
    end
  end
end
