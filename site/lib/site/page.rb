# frozen_string_literal: true

require "yaml"

module Site
  # One Markdown page: pages/NN-section/NN-name.md (front matter: title),
  # or pages/index.md, the home page. Numbers give the order, not the URL.
  class Page
    FRONT_MATTER = /\A---\n(?<yaml>.*?)\n---\n/m

    attr_reader :source, :title, :markdown, :section, :url
    attr_accessor :prev, :next

    # Every page, in reading order: the home page, then the sections.
    def self.all(dir = PAGES)
      home = new(File.join(dir, "index.md"), nil)
      sections = Dir[File.join(dir, "[0-9]*-*")].sort.select { File.directory?(_1) }
      pages = [home] + sections.flat_map do |section_dir|
        section = section_name(section_dir)
        Dir[File.join(section_dir, "[0-9]*-*.md")].sort.map { new(_1, section) }
      end
      pages.each_cons(2) { |a, b| a.next = b; b.prev = a }
      pages
    end

    # "02-the-machine" -> "The machine"
    def self.section_name(dir) = File.basename(dir).sub(/\A\d+-/, "").tr("-", " ").capitalize

    def self.slug(path) = File.basename(path, ".md").sub(/\A\d+-/, "")

    def initialize(source, section)
      @source = source
      @section = section
      text = File.read(source)
      match = FRONT_MATTER.match(text) or raise BuildError, "#{relative} has no front matter"
      meta = YAML.safe_load(match[:yaml])
      @title = meta.fetch("title") { raise BuildError, "#{relative} has no title" }
      @markdown = match.post_match
      @url = section ? "/#{self.class.slug(File.dirname(source))}/#{self.class.slug(source)}.html" : "/"
    end

    def home? = section.nil?

    # Where the page is written, relative to the output directory.
    def output_path = home? ? "index.html" : url.delete_prefix("/")

    def relative = source.delete_prefix("#{PROJECT}/")
  end
end
